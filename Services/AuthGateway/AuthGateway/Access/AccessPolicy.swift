import HTTPTypes
import SharedModels

/// A path pattern of `/`-separated segments: a literal, `*` for exactly one segment, or a final `**` for any
/// number of segments (zero included). Trailing slashes and empty segments are ignored.
struct PathPattern: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case any
        case rest
    }

    let segments: [Segment]
    let description: String

    init(_ pattern: String) {
        self.description = pattern
        self.segments = pattern.split(separator: "/").map { part in
            switch part {
            case "*": .any
            case "**": .rest
            default: .literal(String(part))
            }
        }
        precondition(!segments.dropLast().contains(.rest), "** may only end a pattern: \(pattern)")
    }

    /// Whether the path's segments match.
    func matches(_ path: [Substring]) -> Bool {
        var index = 0
        for segment in segments {
            switch segment {
            case .rest:
                return true
            case .any:
                guard index < path.count else { return false }
            case .literal(let literal):
                guard index < path.count, path[index] == literal else { return false }
            }
            index += 1
        }
        return index == path.count
    }

    /// The segments of a request path (without its query).
    static func split(_ path: String) -> [Substring] {
        let pathOnly = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return pathOnly.split(separator: "/")
    }
}

/// Who may call a route.
enum RouteAccess: Sendable, Equatable {
    /// Anyone; rate-limited per client address (login, register, refresh).
    case anonymous
    /// A valid access token whose role is at least the given one.
    case role(UserRole)
}

/// The gateway's one authorization table: (method, path pattern) → who may call it. The first matching rule
/// wins; a path under `/api/` that matches no rule needs an admin, so a forgotten rule fails closed.
struct AccessPolicy: Sendable {
    struct Rule: Sendable {
        /// `nil` matches every method.
        let methods: Set<HTTPRequest.Method>?
        let pattern: PathPattern
        let access: RouteAccess
    }

    let rules: [Rule]

    /// What a request needs.
    func access(method: HTTPRequest.Method, path: String) -> RouteAccess {
        access(method: method, segments: PathPattern.split(path))
    }

    /// What a request needs, for a path already split into segments.
    func access(method: HTTPRequest.Method, segments: [Substring]) -> RouteAccess {
        for rule in rules where rule.methods.map({ $0.contains(method) }) ?? true && rule.pattern.matches(segments) {
            return rule.access
        }
        return .role(.admin)
    }

    /// The platform's rules (`002-platform-api.md`, roles): analysts read everything that is not
    /// administration and run what exists; engineers and architects also change connections, pipelines,
    /// tasks, datamarts and files; architects also manage projects; admins do everything.
    static let standard = AccessPolicy(rules: {
        var rules: [Rule] = []
        func rule(_ methods: [HTTPRequest.Method]?, _ pattern: String, _ access: RouteAccess) {
            rules.append(Rule(methods: methods.map(Set.init), pattern: PathPattern(pattern), access: access))
        }
        let reads: [HTTPRequest.Method] = [.get, .head, .options]
        let everyone = RouteAccess.role(.analyst)

        // Accounts.
        rule([.post], "/api/v1/auth/register", .anonymous)
        rule([.post], "/api/v1/auth/login", .anonymous)
        rule([.post], "/api/v1/auth/refresh", .anonymous)
        rule([.post], "/api/v1/auth/logout", everyone)
        rule(reads, "/api/v1/users/me", everyone)
        // The controller allows only the account itself or an admin.
        rule([.put], "/api/v1/users/*", everyone)
        rule(nil, "/api/v1/users/**", .role(.admin))
        rule(nil, "/api/v1/admin/**", .role(.admin))

        // The removed Tasks API answers 410 to everyone.
        rule(nil, "/api/v1/tasks/**", .anonymous)

        // Running what already exists.
        rule([.post], "/api/v1/pipelines/*/run", everyone)
        rule([.post], "/api/v1/runs/*/cancel", everyone)
        rule([.post], "/api/v1/scheduler/tasks/*/run", everyone)
        rule([.post], "/api/v1/mvp/triggers/manual/*", everyone)
        // Called by other systems, which prove themselves with the trigger's secret, not an account.
        rule([.post], "/api/v1/mvp/triggers/*/webhook", .anonymous)
        rule([.post], "/api/v1/mvp/datamarts/*/refresh", everyone)
        rule([.post], "/api/v1/mvp/export/**", everyone)
        rule([.post], "/api/v1/connections/*/test", everyone)
        rule([.post], "/api/v1/connectors/*/test", everyone)

        // Projects belong to architects.
        rule(reads, "/api/v1/projects/**", everyone)
        rule(nil, "/api/v1/projects/**", .role(.architect))

        // Everything else of the services: read by all, changed by engineers and up.
        for prefix in Upstream.allCases.flatMap(\.publicPrefixes) where prefix != "/api/v1/projects" && prefix != "/api/v1/admin" {
            rule(reads, prefix + "/**", everyone)
            rule(nil, prefix + "/**", .role(.engineer))
        }
        return rules
    }())
}
