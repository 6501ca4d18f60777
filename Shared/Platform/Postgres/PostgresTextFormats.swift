import Foundation

/// Reads and writes PostgreSQL's ISO timestamp text (`DateStyle=ISO`), exactly to the microsecond.
public enum PostgresTimestamp {
    /// Formats as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, which PostgreSQL accepts for `timestamptz`.
    public static func format(_ date: Date) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 {
            micros += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2)).\(pad(micros, 6))Z"
    }

    /// Parses `YYYY-MM-DD[ HH:MM:SS[.f...]][±HH[:MM[:SS]]]` (a `T` also separates); no offset means UTC.
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for offset in 0..<digits {
                let byte = bytes[index + offset]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += digits
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var seconds = CivilCalendar.days(fromCivil: year, month, day) * 86_400
        var micros: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "T") {
            index += 1
            guard let hour = number(2), expect(":"), let minute = number(2), expect(":"), let second = number(2),
                hour < 24, minute < 60, second < 61
            else { return nil }
            seconds += hour * 3600 + minute * 60 + second
            if expect(".") {
                var scale: Int64 = 100_000
                while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                    micros += Int64(bytes[index] - 48) * scale
                    scale /= 10
                    index += 1
                }
            }
        }
        if index < bytes.count {
            if bytes[index] == UInt8(ascii: "Z") {
                index += 1
            } else {
                let sign: Int64
                switch bytes[index] {
                case UInt8(ascii: "+"): sign = 1
                case UInt8(ascii: "-"): sign = -1
                default: return nil
                }
                index += 1
                guard let hours = number(2) else { return nil }
                var offset = hours * 3600
                if expect(":") {
                    guard let minutes = number(2) else { return nil }
                    offset += minutes * 60
                    if expect(":") {
                        guard let secs = number(2) else { return nil }
                        offset += secs
                    }
                }
                seconds -= sign * offset
            }
        }
        guard index == bytes.count else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }
}

/// Parses one-dimensional PostgreSQL array literals such as `{a,"b c",NULL}`.
public enum PostgresArrayLiteral {
    /// The elements, with `nil` for an unquoted `NULL`; `nil` overall when the text is not a 1-D array literal.
    public static func parse(_ text: String) -> [String?]? {
        var characters = text.makeIterator()
        guard characters.next() == "{" else { return nil }
        var elements: [String?] = []
        var current = ""
        var quoted = false
        var wasQuoted = false
        var finished = false
        var sawElement = false
        while let character = characters.next() {
            if quoted {
                switch character {
                case "\\":
                    guard let escaped = characters.next() else { return nil }
                    current.append(escaped)
                case "\"": quoted = false
                default: current.append(character)
                }
                continue
            }
            switch character {
            case "\"":
                quoted = true
                wasQuoted = true
                sawElement = true
            case ",", "}":
                if sawElement || character == "," {
                    elements.append(!wasQuoted && current == "NULL" ? nil : current)
                }
                current = ""
                wasQuoted = false
                sawElement = false
                if character == "}" { finished = true }
            case "{": return nil
            default:
                current.append(character)
                sawElement = true
            }
            if finished { break }
        }
        guard finished, characters.next() == nil else { return nil }
        return elements
    }
}
