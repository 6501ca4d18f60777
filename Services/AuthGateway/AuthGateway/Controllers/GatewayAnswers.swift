import HTTPTypes
import Platform
import SharedModels

/// The answers the gateway gives itself, before or instead of the service that owns a route, added to every
/// operation of the merged API document they can reach: the services' documents describe only what the services
/// say. Each is derived from the rule that produces it, so the document cannot drift from the gateway.
enum GatewayAnswers {
    /// `document` with, for each operation: 401 where a token is needed, 403 where the role table refuses some
    /// role, 429 on rate-limited routes, 400 and 413 where there is a body (400 also where the path takes values),
    /// 503 and 504 where the route is proxied.
    static func documenting(_ document: OpenAPIDocument, policy: AccessPolicy) -> OpenAPIDocument {
        guard case .object(var paths)? = document.root["paths"] else { return document }
        for (path, item) in paths {
            guard case .object(var operations) = item else { continue }
            let segments = PathPattern.split(path)
            let proxied = Upstream.owner(ofPath: path) != nil
            for (method, value) in operations where OpenAPIDocument.methods.contains(method) {
                guard case .object(var operation) = value,
                      let requestMethod = HTTPRequest.Method(method.uppercased()) else { continue }
                var answers: [(status: String, response: String)] = []
                if path.hasPrefix("/api/") {
                    switch policy.access(method: requestMethod, segments: segments) {
                    case .anonymous:
                        break
                    case .role(let role):
                        answers.append(("401", "Unauthorized"))
                        if role != .analyst { answers.append(("403", "Forbidden")) }
                    }
                    answers.append(("429", "TooManyRequests"))
                }
                if operation["requestBody"] != nil { answers += [("400", "BadRequest"), ("413", "PayloadTooLarge")] }
                // A path value with an encoded `/`, `\\` or `.` is refused as not canonical (GatewayResponder).
                else if path.contains("{") { answers.append(("400", "BadRequest")) }
                if proxied { answers += [("503", "ServiceUnavailable"), ("504", "GatewayTimeout")] }
                var responses: [String: JSONValue] = [:]
                if case .object(let existing)? = operation["responses"] { responses = existing }
                for answer in answers where responses[answer.status] == nil {
                    responses[answer.status] = .object(["$ref": .string("#/components/responses/\(answer.response)")])
                }
                operation["responses"] = .object(responses)
                operations[method] = .object(operation)
            }
            paths[path] = .object(operations)
        }
        var root = document.root
        root["paths"] = .object(paths)
        return OpenAPIDocument(root: root)
    }
}

extension Upstream {
    /// The service whose public prefix a path falls under.
    static func owner(ofPath path: String) -> Upstream? {
        allCases.first { upstream in
            upstream.publicPrefixes.contains { path == $0 || path.hasPrefix($0 + "/") }
        } ?? (path == "/health/storage" ? .fileStorage : nil)
    }
}
