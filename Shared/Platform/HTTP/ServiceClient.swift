import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SharedModels

/// Another service of the platform, called over its `/internal/*` routes with service tokens: one place for the
/// request, the token, the timeout, answers read whole (bounded), and the 503 when the service cannot be reached.
public struct ServiceClient: Sendable {
    /// The service's name, the audience of the tokens (`connections-vault`).
    public let service: String
    /// Its base URL (`service.url.<name>`).
    public let baseURL: String
    let tokens: ServiceTokenIssuer
    let httpClient: HTTPClient
    /// Longest wait for an answer.
    public var timeout: TimeAmount

    /// Creates a client of `service` at `baseURL`.
    public init(service: String, baseURL: String, tokens: ServiceTokenIssuer, httpClient: HTTPClient, timeout: TimeAmount = .seconds(10)) {
        self.service = service
        self.baseURL = baseURL
        self.tokens = tokens
        self.httpClient = httpClient
        self.timeout = timeout
    }

    /// The answer to `method path` with an optional JSON body; ``unavailable`` when there is none.
    public func call(_ method: HTTPMethod, _ path: String, body: (some Encodable & Sendable)? = Optional<String>.none) async throws -> FetchedResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: try await tokens.authorization(for: service))
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONEncoder.platform.encode(body)))
        }
        do {
            return try await httpClient.fetch(request, timeout: timeout)
        } catch {
            throw unavailable
        }
    }

    /// Whether `GET path` finds what it names: 200 is yes and 404 no; any other answer, or none, throws
    /// `unavailable` (``unavailable`` by default).
    public func exists(_ path: String, unavailable: APIError? = nil) async throws -> Bool {
        let status: UInt
        do {
            status = try await call(.GET, path).status.code
        } catch {
            throw unavailable ?? self.unavailable
        }
        switch status {
        case 200: return true
        case 404: return false
        default: throw unavailable ?? self.unavailable
        }
    }

    /// Decodes a 200 answer; ``unavailable`` for anything else.
    public func decode<T: Decodable>(_ type: T.Type, from response: FetchedResponse) throws -> T {
        guard response.status == .ok, let value = try? JSONDecoder.platform.decode(type, from: Data(response.body.readableBytesView)) else {
            throw unavailable
        }
        return value
    }

    /// The error envelope's `details.reason` (else its `message`) of an answer, for relaying a service's 4xx.
    public func reason(of response: FetchedResponse) -> String? {
        guard let envelope = envelope(of: response) else { return nil }
        if case .string(let reason)? = envelope.error.details?["reason"] { return reason }
        return envelope.error.message
    }

    /// The error envelope's `details.field` of an answer.
    public func field(of response: FetchedResponse) -> String? {
        guard case .string(let field)? = envelope(of: response)?.error.details?["field"] else { return nil }
        return field
    }

    private func envelope(of response: FetchedResponse) -> ErrorEnvelope? {
        try? JSONDecoder.platform.decode(ErrorEnvelope.self, from: Data(response.body.readableBytesView))
    }

    /// 503 naming the service.
    public var unavailable: APIError {
        APIError(.serviceUnavailable, code: .serviceUnavailable, message: "\(service) cannot be reached; try again shortly")
    }

    /// `text` as one path segment: everything but ASCII letters, digits, `-`, `_` and `~` percent-encoded, so a
    /// user's id never adds a segment, a dot segment or a query.
    public static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: segmentCharacters) ?? ""
    }

    private static let segmentCharacters = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~")
}
