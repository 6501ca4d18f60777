import Platform
import Testing

@Suite struct TextRulesTests {
    @Test(arguments: [
        ("Orders", true), ("  Orders  ", true), ("Zähler 7", true), ("👩‍💻 team", true), (String(repeating: "x", count: 200), true),
        ("", false), ("   ", false), ("a\nb", false), ("tab\there", false), ("nul\u{0}", false), ("bell\u{7}", false),
        ("c1\u{85}", false), (String(repeating: "x", count: 201), false),
    ])
    func names(text: String, valid: Bool) {
        #expect(TextRules.isName(text) == valid, "\(text.debugDescription)")
    }

    @Test func anEmptyNameCanBeAllowed() {
        #expect(TextRules.isName("", allowEmpty: true))
        #expect(!TextRules.isName("\u{1b}[31m", allowEmpty: true))
    }
}
