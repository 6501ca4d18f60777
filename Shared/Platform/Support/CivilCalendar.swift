/// Exact proleptic Gregorian date arithmetic (Howard Hinnant's days-from-civil and civil-from-days), without
/// Foundation's `Calendar`: for timestamp text and for cron, where it is on hot paths.
public enum CivilCalendar {
    /// Days since 1970-01-01 of a calendar date (month 1–12).
    public static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The calendar date (year, month 1–12, day) of a day number since 1970-01-01.
    public static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// Day of the week of a day number since 1970-01-01: 0 is Sunday … 6 is Saturday.
    public static func weekday(ofDays days: Int64) -> Int {
        // 1970-01-01 was a Thursday (4).
        Int(((days % 7) + 7 + 4) % 7)
    }

    /// Days in a month (1–12) of a year.
    public static func daysInMonth(_ year: Int64, _ month: Int64) -> Int64 {
        days(fromCivil: month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1) - days(fromCivil: year, month, 1)
    }
}
