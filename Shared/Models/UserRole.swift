/// The roles of `002-platform-api.md`, from least to most privileged.
public enum UserRole: String, Codable, Sendable, CaseIterable, Comparable {
    /// Reads everything that is not administration; runs existing pipelines and tasks.
    case analyst
    /// Also creates, edits and deletes connections, pipelines, tasks, datamarts and files.
    case engineer
    /// Also manages projects.
    case architect
    /// Everything, including users and the admin API.
    case admin

    public static func < (lhs: UserRole, rhs: UserRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}
