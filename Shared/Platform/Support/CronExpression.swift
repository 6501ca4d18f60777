import Foundation

/// Why a cron expression was refused: which field and what is wrong with it.
public struct CronError: Error, Equatable, CustomStringConvertible {
    /// `minute`, `hour`, `day_of_month`, `month`, `day_of_week`, or `expression` for the whole.
    public var field: String
    public var reason: String

    public var description: String { field == "expression" ? reason : "\(field): \(reason)" }
}

/// A classic five-field cron expression (`minute hour day-of-month month day-of-week`) with lists, ranges, steps,
/// month and weekday names and the `@hourly` … `@yearly` macros, evaluated in an IANA time zone.
///
/// Days: when both day-of-month and day-of-week are restricted (neither starts with `*`), a day matches if
/// either does, as in classic cron. Daylight saving: a wall-clock time the clock skips runs as far after the
/// jump as it was after the skipped hour's start (02:30 becomes 03:30), and a time the clock passes twice runs
/// once, at its first passing — except for jobs whose hour field starts with `*`, which follow the clock and
/// run in both passes (an "every 15 minutes" job keeps its interval).
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The expression as written.
    public let text: String
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    /// Bit 0 is Sunday … bit 6 Saturday (7 is folded onto 0).
    private let daysOfWeek: UInt64
    /// The members of the hour and minute sets, ascending (kept: they are walked for every fire).
    private let hourList: [Int]
    private let minuteList: [Int]
    private let dayOfMonthRestricted: Bool
    private let dayOfWeekRestricted: Bool
    private let followsClock: Bool

    public var description: String { text }

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    private static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// Parses an expression; throws ``CronError`` naming the field at fault.
    public init(_ text: String) throws(CronError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        self.text = trimmed
        var source = trimmed
        if trimmed.hasPrefix("@") {
            guard let expanded = Self.macros[trimmed.lowercased()] else {
                throw CronError(field: "expression", reason: "unknown macro \(trimmed); use @hourly, @daily, @weekly, @monthly or @yearly")
            }
            source = expanded
        }
        let fields = source.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronError(field: "expression", reason: "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        minutes = try Self.parse(fields[0], name: "minute", range: 0...59)
        hours = try Self.parse(fields[1], name: "hour", range: 0...23)
        daysOfMonth = try Self.parse(fields[2], name: "day_of_month", range: 1...31)
        months = try Self.parse(fields[3], name: "month", range: 1...12, names: Self.monthNames, firstName: 1)
        let weekdays = try Self.parse(fields[4], name: "day_of_week", range: 0...7, names: Self.dayNames, firstName: 0)
        daysOfWeek = (weekdays | (weekdays >> 7)) & 0x7F
        hourList = Self.members(hours, in: 0...23)
        minuteList = Self.members(minutes, in: 0...59)
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
        followsClock = fields[1].hasPrefix("*")
        if dayOfMonthRestricted, !dayOfWeekRestricted, !Self.anyDayExists(daysOfMonth, in: months) {
            throw CronError(field: "day_of_month", reason: "no month of the expression has such a day")
        }
    }

    /// The first fire time strictly after `instant`, or `nil` if there is none within eight years.
    public func nextFire(after instant: Date, in zone: TimeZone) -> Date? {
        let after = Int64(instant.timeIntervalSince1970.rounded(.down))
        var day = LocalDay(containing: after, in: zone)
        for _ in 0..<(366 * 8 + 2) {
            if matches(day), let fire = firstFire(on: day, after: after, in: zone) {
                return Date(timeIntervalSince1970: TimeInterval(fire))
            }
            day = day.next
        }
        return nil
    }

    /// The latest fire time at or before `instant`, or `nil` if there is none within eight years before it.
    /// Looks back over growing windows, so a task with frequent fires costs little however long it was missed.
    public func latestFire(atOrBefore instant: Date, in zone: TimeZone) -> Date? {
        let windows: [TimeInterval] = [120, 7_200, 2 * 86_400, 32 * 86_400, 367 * 86_400, 8 * 367 * 86_400]
        for window in windows {
            guard var latest = nextFire(after: instant.addingTimeInterval(-window), in: zone), latest <= instant else { continue }
            while let next = nextFire(after: latest, in: zone), next <= instant { latest = next }
            return latest
        }
        return nil
    }

    /// The next `count` fire times after `instant`.
    public func fireTimes(after instant: Date, in zone: TimeZone, count: Int) -> [Date] {
        var times: [Date] = []
        var cursor = instant
        while times.count < count, let next = nextFire(after: cursor, in: zone) {
            times.append(next)
            cursor = next
        }
        return times
    }

    private func matches(_ day: LocalDay) -> Bool {
        guard months & (1 << day.month) != 0 else { return false }
        let byDate = daysOfMonth & (1 << day.day) != 0
        let byWeekday = daysOfWeek & (1 << day.weekday) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return byDate || byWeekday }
        return byDate && byWeekday
    }

    /// The earliest fire of a matching local day after `after` (epoch seconds).
    private func firstFire(on day: LocalDay, after: Int64, in zone: TimeZone) -> Int64? {
        let midnight = day.days * 86_400
        let offsetAtStart = zone.offset(at: midnight - 86_400)
        let offsetAtEnd = zone.offset(at: midnight + 2 * 86_400)
        if offsetAtStart == offsetAtEnd {
            // No transition near this day (they are months apart): wall times map one to one, in order, so the
            // first one after `after` is the answer.
            let afterWall = after + offsetAtStart
            for hour in hourList where midnight + Int64(hour * 3600 + 3599) > afterWall {
                for minute in minuteList {
                    let wall = midnight + Int64(hour * 3600 + minute * 60)
                    if wall > afterWall { return wall - offsetAtStart }
                }
            }
            return nil
        }
        var best: Int64?
        for hour in hourList {
            for minute in minuteList {
                for fire in instants(ofWall: midnight + Int64(hour * 3600 + minute * 60), in: zone) where fire > after {
                    best = min(best ?? fire, fire)
                }
            }
        }
        return best
    }

    /// The instants a wall-clock time stands for: one; two when the clock passes it twice (the first only,
    /// unless the job follows the clock); or, when the clock skips it, the instant as far after the jump.
    private func instants(ofWall wall: Int64, in zone: TimeZone) -> [Int64] {
        let candidates = Set([zone.offset(at: wall - 86_400), zone.offset(at: wall), zone.offset(at: wall + 86_400)])
        let valid = candidates.map { wall - $0 }.filter { zone.offset(at: $0) == wall - $0 }.sorted()
        if valid.isEmpty {
            // Skipped: read the wall time with the offset in force before the jump.
            return [wall - zone.offset(at: wall - 86_400)]
        }
        return followsClock ? valid : [valid[0]]
    }

    private static func members(_ set: UInt64, in range: ClosedRange<Int>) -> [Int] {
        range.filter { set & (1 << $0) != 0 }
    }

    private static func anyDayExists(_ days: UInt64, in months: UInt64) -> Bool {
        // The longest each month gets (February in a leap year).
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains { month in months & (1 << month) != 0 && (1...longest[month]).contains { days & (1 << $0) != 0 } }
    }

    private static func parse(_ field: String, name: String, range: ClosedRange<Int>, names: [String] = [], firstName: Int = 0) throws(CronError) -> UInt64 {
        func value(_ text: Substring) throws(CronError) -> Int {
            if let number = Int(text) {
                guard range.contains(number) else { throw CronError(field: name, reason: "\(number) is out of range \(range.lowerBound)-\(range.upperBound)") }
                return number
            }
            if let index = names.firstIndex(of: text.uppercased()) { return index + firstName }
            throw CronError(field: name, reason: "'\(text)' is not a number" + (names.isEmpty ? "" : " or a name (\(names.joined(separator: ", ")))"))
        }
        var set: UInt64 = 0
        for element in field.split(separator: ",", omittingEmptySubsequences: false) {
            guard !element.isEmpty else { throw CronError(field: name, reason: "empty list element in '\(field)'") }
            let parts = element.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw CronError(field: name, reason: "more than one step in '\(element)'") }
            var step = 1
            if parts.count == 2 {
                guard let number = Int(parts[1]), number > 0 else { throw CronError(field: name, reason: "step '\(parts[1])' must be a positive number") }
                step = number
            }
            let lower: Int, upper: Int
            if parts[0] == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = parts[0].firstIndex(of: "-") {
                lower = try value(parts[0][..<dash])
                upper = try value(parts[0][parts[0].index(after: dash)...])
                guard lower <= upper else { throw CronError(field: name, reason: "range '\(parts[0])' runs backwards") }
            } else {
                lower = try value(parts[0])
                // `5/15` is `5-<max>/15`, as most crons read it.
                upper = parts.count == 2 ? range.upperBound : lower
            }
            for member in stride(from: lower, through: upper, by: step) { set |= 1 << member }
        }
        return set
    }
}

/// One local calendar day and its weekday.
private struct LocalDay {
    /// Days since 1970-01-01 of the local date.
    let days: Int64
    let month: Int
    let day: Int
    let weekday: Int

    init(days: Int64) {
        let civil = CivilCalendar.civil(fromDays: days)
        self.days = days
        self.month = Int(civil.month)
        self.day = Int(civil.day)
        self.weekday = CivilCalendar.weekday(ofDays: days)
    }

    /// The local day of an instant.
    init(containing instant: Int64, in zone: TimeZone) {
        let local = instant + zone.offset(at: instant)
        self.init(days: local >= 0 ? local / 86_400 : (local - 86_399) / 86_400)
    }

    var next: LocalDay { LocalDay(days: days + 1) }
}

extension TimeZone {
    /// Seconds east of UTC at an instant (epoch seconds).
    fileprivate func offset(at instant: Int64) -> Int64 {
        Int64(secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(instant))))
    }
}
