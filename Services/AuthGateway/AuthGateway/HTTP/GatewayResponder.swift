import HTTPTypes
import Hummingbird
import Platform

/// The outermost layer of the gateway, around the router: serves the unversioned paths of the older
/// documents (`/auth/*`, `/users*`, `/files*`) as their `/api/v1` routes, answers CORS, and adds the security
/// headers to every response, errors included.
struct GatewayResponder<Wrapped: HTTPResponder>: HTTPResponder where Wrapped.Context == PlatformRequestContext {
    typealias Context = PlatformRequestContext

    let router: Wrapped
    let cors: CORSPolicy
    /// The methods the API document declares for a path (`nil` for a path it does not describe).
    let declaredMethods: @Sendable (String) async -> [String]?

    func respond(to request: Request, context: Context) async throws -> Response {
        if let preflight = cors.preflight(request) { return preflight }
        // Only the methods of the API are routed or passed to a service: TRACE would echo a request's cookies and
        // tokens back to whatever script sent it, and the gateway is no tunnel for CONNECT.
        if !GatewayRoutes.proxiedMethods.contains(request.method) {
            let allowed = await declaredMethods(request.head.path ?? "/") ?? GatewayRoutes.proxiedMethods.map(\.rawValue)
            return Self.refusal(APIError(.methodNotAllowed, code: .methodNotAllowed, message: "\(request.method) is not served",
                                         headers: [.allow: allowed.joined(separator: ", ")]))
        }
        guard Self.isCanonical(request.head.path ?? "") else {
            // The router ignores empty segments and services may decode `%2F` or resolve `..`: a path that two
            // parts could read differently would let a request past the access rules. Only one spelling passes.
            return Self.refusal(APIError(.badRequest, code: .badRequest, message: "The request path is not in canonical form"))
        }
        var forwarded = request
        if let path = request.head.path, let canonical = Self.canonicalPath(path) {
            var head = request.head
            head.path = canonical
            forwarded = Request(head: head, body: request.body)
        }
        var response = try await router.respond(to: forwarded, context: context)
        SecurityHeaders.apply(to: &response.headers, path: forwarded.uri.path)
        cors.apply(to: &response.headers, request: request)
        return response
    }

    /// The answer to a request refused before routing, in the error envelope with the security headers.
    static func refusal(_ error: APIError) -> Response {
        var response = ErrorEnvelopeMiddleware<Context>.response(for: error, requestID: RequestIDMiddleware<Context>.generate())
        SecurityHeaders.apply(to: &response.headers, path: "/")
        return response
    }

    /// An origin-form target (`/a/b?q`) without empty, `.` or `..` segments and without encoded `/`, `\\` or `.`.
    static func isCanonical(_ target: String) -> Bool {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path.first == "/" else { return false }
        if path == "/" { return true }
        let segments = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            // A trailing slash (an empty last segment) is the only empty segment allowed.
            if segment.isEmpty { if index == segments.count - 1 { continue } else { return false } }
            if segment == "." || segment == ".." { return false }
        }
        // Byte scan (this runs on every request): no `\`, and no `%2F`, `%5C` or `%2E` in any case.
        let bytes = Array(path.utf8)
        for (index, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "\\") { return false }
            guard byte == UInt8(ascii: "%"), index + 2 < bytes.count else { continue }
            let high = bytes[index + 1], low = bytes[index + 2] | 0x20
            if (high == UInt8(ascii: "2") && (low == UInt8(ascii: "f") || low == UInt8(ascii: "e")))
                || (high == UInt8(ascii: "5") && low == UInt8(ascii: "c")) { return false }
        }
        return true
    }

    /// The `/api/v1` path of an unversioned alias (query kept), or `nil` when the path is not an alias.
    static func canonicalPath(_ path: String) -> String? {
        for prefix in ["/auth", "/users", "/files"] where path.hasPrefix(prefix) {
            let rest = path.dropFirst(prefix.count)
            if rest.isEmpty || rest.first == "/" || rest.first == "?" { return "/api/v1" + path }
        }
        return nil
    }
}

/// Headers that make browsers treat API answers as data only.
enum SecurityHeaders {
    static func apply(to headers: inout HTTPFields, path: String) {
        headers[.xContentTypeOptions] = "nosniff"
        headers[.xFrameOptions] = "DENY"
        headers[.referrerPolicy] = "no-referrer"
        if headers[.contentSecurityPolicy] == nil {
            headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        }
        if path.hasPrefix("/api/"), headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    }
}

/// Cross-origin access for browser clients from the configured origins (`*` allows any).
struct CORSPolicy: Sendable {
    let origins: [String]

    private func allowedOrigin(_ request: Request) -> String? {
        guard let origin = request.headers[.origin], origin != "null", !origins.isEmpty else { return nil }
        if origins.contains("*") { return "*" }
        return origins.contains(origin) ? origin : nil
    }

    /// The answer to a preflight `OPTIONS` from an allowed origin.
    func preflight(_ request: Request) -> Response? {
        guard request.method == .options, request.headers[.accessControlRequestMethod] != nil,
              let origin = allowedOrigin(request) else { return nil }
        return Response(status: .noContent, headers: [
            .accessControlAllowOrigin: origin,
            .accessControlAllowMethods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            .accessControlAllowHeaders: "Authorization, Content-Type, Accept, X-Request-Id",
            .accessControlMaxAge: "600",
            .vary: "Origin",
        ])
    }

    /// Adds the CORS headers of an actual request from an allowed origin.
    func apply(to headers: inout HTTPFields, request: Request) {
        guard let origin = allowedOrigin(request) else { return }
        headers[.accessControlAllowOrigin] = origin
        headers[.accessControlExposeHeaders] = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
        headers[values: .vary].append("Origin")
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}
