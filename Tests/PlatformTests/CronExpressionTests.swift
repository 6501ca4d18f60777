import Foundation
import Platform
import Testing

@Suite struct CronExpressionTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let berlin = TimeZone(identifier: "Europe/Berlin")!

    static func instant(_ text: String) -> Date {
        try! Date(text, strategy: .iso8601)
    }

    static func text(_ date: Date?) -> String {
        date.map { $0.formatted(.iso8601) } ?? "never"
    }

    /// Next fire times in UTC of an expression after an instant, in a zone.
    static func fires(_ expression: String, after: String, in zone: TimeZone = utc, count: Int = 1) throws -> [String] {
        try CronExpression(expression).fireTimes(after: instant(after), in: zone, count: count).map(text)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var expression: String
        var after: String
        var expected: [String]
        var zone: String = "UTC"
        var testDescription: String { "\(expression) after \(after) in \(zone)" }
    }

    static let cases: [Case] = [
        Case(expression: "*/15 * * * *", after: "2026-01-01T00:07:00Z",
             expected: ["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z", "2026-01-01T01:15:00Z"]),
        // Strictly after: a fire time equal to the instant is not the next one.
        Case(expression: "0 2 * * *", after: "2026-01-01T02:00:00Z", expected: ["2026-01-02T02:00:00Z"]),
        Case(expression: "0 2 * * *", after: "2026-01-01T01:59:59Z", expected: ["2026-01-01T02:00:00Z"]),
        Case(expression: "10-20/5 * * * *", after: "2026-01-01T00:00:00Z",
             expected: ["2026-01-01T00:10:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:20:00Z", "2026-01-01T01:10:00Z"]),
        Case(expression: "5/20 1,3 * * *", after: "2026-01-01T00:00:00Z",
             expected: ["2026-01-01T01:05:00Z", "2026-01-01T01:25:00Z", "2026-01-01T01:45:00Z", "2026-01-01T03:05:00Z"]),
        // Names, any case; the week's days are 0-7 with Sunday twice.
        Case(expression: "0 9 * jan-Mar MON-FRI", after: "2026-03-31T10:00:00Z", expected: ["2027-01-01T09:00:00Z", "2027-01-04T09:00:00Z"]),
        Case(expression: "0 0 * * 7", after: "2026-01-01T00:00:00Z", expected: ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]),
        Case(expression: "0 0 * * 0", after: "2026-01-01T00:00:00Z", expected: ["2026-01-04T00:00:00Z"]),
        // Both day fields restricted: either may match (Friday 2nd, Tuesday 13th, Friday 9th).
        Case(expression: "0 0 13 * FRI", after: "2026-01-01T00:00:00Z",
             expected: ["2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"]),
        // Only one restricted: it alone decides (`*/2` counts as unrestricted, as in classic cron).
        Case(expression: "0 0 */2 * FRI", after: "2026-01-01T00:00:00Z", expected: ["2026-01-09T00:00:00Z", "2026-01-23T00:00:00Z"]),
        // Leap years: the next 29 February.
        Case(expression: "0 0 29 2 *", after: "2026-01-01T00:00:00Z", expected: ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        Case(expression: "0 12 31 * *", after: "2026-04-01T00:00:00Z", expected: ["2026-05-31T12:00:00Z", "2026-07-31T12:00:00Z"]),
        // Macros.
        Case(expression: "@hourly", after: "2026-01-01T00:30:00Z", expected: ["2026-01-01T01:00:00Z"]),
        Case(expression: "@daily", after: "2026-01-01T00:30:00Z", expected: ["2026-01-02T00:00:00Z"]),
        Case(expression: "@weekly", after: "2026-01-01T00:30:00Z", expected: ["2026-01-04T00:00:00Z"]),
        Case(expression: "@monthly", after: "2026-01-01T00:30:00Z", expected: ["2026-02-01T00:00:00Z"]),
        Case(expression: "@YEARLY", after: "2026-01-01T00:30:00Z", expected: ["2027-01-01T00:00:00Z"]),
        Case(expression: "@annually", after: "2026-12-31T23:59:59Z", expected: ["2027-01-01T00:00:00Z"]),
        // A zone with a half-hour offset and no daylight saving.
        Case(expression: "0 9 * * *", after: "2026-01-01T00:00:00Z", expected: ["2026-01-01T03:30:00Z"], zone: "Asia/Kolkata"),
        // Berlin springs forward on 29 March 2026 (02:00 CET -> 03:00 CEST): 02:30 runs once, at 03:30 CEST.
        Case(expression: "30 2 * * *", after: "2026-03-28T12:00:00Z",
             expected: ["2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"], zone: "Europe/Berlin"),
        Case(expression: "0 2 * * *", after: "2026-03-28T12:00:00Z", expected: ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"], zone: "Europe/Berlin"),
        Case(expression: "*/30 * * * *", after: "2026-03-29T00:00:00Z",
             expected: ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"], zone: "Europe/Berlin"),
        // ... and falls back on 25 October 2026 (03:00 CEST -> 02:00 CET): 02:30 runs once, at its first passing,
        Case(expression: "30 2 * * *", after: "2026-10-24T12:00:00Z",
             expected: ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"], zone: "Europe/Berlin"),
        // while a job that follows the clock keeps its interval through both passes.
        Case(expression: "*/30 * * * *", after: "2026-10-25T00:00:00Z",
             expected: ["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"], zone: "Europe/Berlin"),
        // New York springs forward at 02:00 EST on 8 March 2026.
        Case(expression: "15 2 * * *", after: "2026-03-07T12:00:00Z",
             expected: ["2026-03-08T07:15:00Z", "2026-03-09T06:15:00Z"], zone: "America/New_York"),
    ]

    @Test(arguments: cases) func fireTimes(_ example: Case) throws {
        let zone = try #require(TimeZone(identifier: example.zone))
        #expect(try Self.fires(example.expression, after: example.after, in: zone, count: example.expected.count) == example.expected)
    }

    @Test(arguments: [
        ("60 * * * *", "minute"), ("* 24 * * *", "hour"), ("* * 0 * *", "day_of_month"), ("* * * 13 *", "month"),
        ("* * * * 8", "day_of_week"), ("*/0 * * * *", "minute"), ("5-1 * * * *", "minute"), ("* * * FOO *", "month"),
        ("1,,2 * * * *", "minute"), ("* * * *", "expression"), ("* * * * * *", "expression"), ("@reboot", "expression"),
        ("", "expression"), ("0 0 30 2 *", "day_of_month"), ("0 0 31 4,6 *", "day_of_month"), ("1/2/3 * * * *", "minute"),
    ])
    func invalidExpressionsNameTheirField(expression: String, field: String) {
        #expect { try CronExpression(expression) } throws: { ($0 as? CronError)?.field == field }
    }

    @Test func thirtyFirstOfFebruaryIsFineWhenTheWeekdayCanMatch() throws {
        // Either-semantics: day 30 never comes in February, Mondays do.
        #expect(try Self.fires("0 0 30 2 MON", after: "2026-01-01T00:00:00Z") == ["2026-02-02T00:00:00Z"])
    }

    @Test func errorsSayWhatIsWrong() {
        #expect { try CronExpression("61 * * * *") } throws: { "\($0)" == "minute: 61 is out of range 0-59" }
    }
}
