import HTTPTypes
import NIOHTTP1
import Platform

/// The header rules of the proxy, both ways: hop-by-hop headers (RFC 9110 §7.6.1, and any named in
/// `Connection`) are not forwarded; the request id and the verified identity are set by the gateway,
/// whatever the client sent.
enum ProxyHeaders {
    /// Headers that describe one connection, not the message.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade",
    ]

    /// Headers only the gateway may set on a forwarded request.
    static let identity: Set<String> = [
        "x-authenticated-user", "x-authenticated-role", "x-request-id", "x-forwarded-for", "host",
        "forwarded", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip",
    ]

    /// The headers of the request sent to a service.
    static func upstreamRequest(_ fields: HTTPFields, requestID: String, user: AuthenticatedUser?, clientAddress: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(fields.count + 4)
        let dropped = droppedNames(fields)
        for field in fields {
            let name = field.name.canonicalName
            if dropped.contains(name) || identity.contains(name) { continue }
            headers.add(name: field.name.rawName, value: field.value)
        }
        headers.add(name: "X-Request-Id", value: requestID)
        if let user {
            headers.add(name: "X-Authenticated-User", value: user.userID)
            headers.add(name: "X-Authenticated-Role", value: user.role.rawValue)
        }
        let forwarded = [fields[.forwardedFor], clientAddress].compactMap { $0 }.joined(separator: ", ")
        if !forwarded.isEmpty { headers.add(name: "X-Forwarded-For", value: forwarded) }
        return headers
    }

    /// The headers of the response sent back to the client.
    static func clientResponse(_ headers: HTTPHeaders) -> HTTPFields {
        var dropped = hopByHop
        for value in headers["connection"] { dropped.formUnion(tokens(value)) }
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers where !dropped.contains(name.lowercased()) {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        return fields
    }

    private static func droppedNames(_ fields: HTTPFields) -> Set<String> {
        var dropped = hopByHop
        for value in fields[values: .connection] { dropped.formUnion(tokens(value)) }
        return dropped
    }

    private static func tokens(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
    }
}
