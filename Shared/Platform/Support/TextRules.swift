import Foundation

/// The rules of free text that people give things: names of connections, tasks, triggers and accounts.
public enum TextRules {
    /// A name shown to people: at most `maxLength` characters once the spaces around it are trimmed, at least one
    /// unless `allowEmpty`, and no control character (Unicode Cc: line breaks, tabs, escapes, NUL). Format characters
    /// such as zero-width joiners stay allowed: emoji and names in several scripts are written with them.
    public static func isName(_ text: String, maxLength: Int = 200, allowEmpty: Bool = false) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        return (allowEmpty || !trimmed.isEmpty) && trimmed.count <= maxLength
            && !text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
