import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SharedModels

/// An error meant for the client: a status, a contract error code, a safe message and optional details.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// HTTP status.
    public var status: HTTPResponse.Status
    /// Contract error code.
    public var code: ErrorCode
    /// Sentence for the client; never holds secrets or internals.
    public var message: String
    /// Structured context (`field`, `reason`, ...).
    public var details: [String: JSONValue]?
    /// Extra response headers (`Retry-After`, ...).
    public var headers: HTTPFields

    /// Creates an error.
    public init(_ status: HTTPResponse.Status, code: ErrorCode, message: String,
                details: [String: JSONValue]? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public var description: String { "APIError(\(status.code) \(code.rawValue): \(message))" }

    /// 422 for a field that failed validation.
    public static func validation(field: String, reason: String) -> APIError {
        APIError(.unprocessableContent, code: .validationError, message: "Invalid value for \(field): \(reason)",
                 details: ["field": .string(field), "reason": .string(reason)])
    }

    /// 404 for a resource that does not exist.
    public static func notFound(_ resource: String, id: String) -> APIError {
        APIError(.notFound, code: .resourceNotFound, message: "\(resource) \(id) not found",
                 details: ["resource": .string(resource), "id": .string(id)])
    }

    /// The envelope for errors that are not ``APIError``: Hummingbird's HTTP errors, body decoding failures,
    /// and everything else as a 500 that reveals nothing.
    public static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as any APIErrorConvertible:
            return error.apiError
        case let error as HTTPError:
            return APIError(error.status, code: code(for: error.status),
                            message: error.body ?? message(for: error.status), headers: error.headers)
        case let error as DecodingError:
            return decoding(error)
        case let error as PostgresError where error.code == .invalidInput:
            return APIError(.badRequest, code: .badRequest, message: "A value in the request is not valid input")
        case is NIOTooManyBytesError:
            return APIError(.contentTooLarge, code: .payloadTooLarge, message: message(for: .contentTooLarge))
        default:
            return APIError(.internalServerError, code: .internalError, message: "Internal server error")
        }
    }

    static func code(for status: HTTPResponse.Status) -> ErrorCode {
        switch status.code {
        case 400: .badRequest
        case 401: .authFailed
        case 403: .permissionDenied
        case 404: .resourceNotFound
        case 405: .methodNotAllowed
        case 409: .duplicateResource
        case 410: .gone
        case 413: .payloadTooLarge
        case 422: .validationError
        case 429: .rateLimitExceeded
        case 503: .serviceUnavailable
        case 504: .gatewayTimeout
        default: status.code >= 500 ? .internalError : .badRequest
        }
    }

    static func message(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "No such resource or route"
        case 413: "The request body is too large"
        default: status.reasonPhrase
        }
    }

    /// Malformed JSON is a 400; a missing or mistyped field is a 422 naming the field.
    static func decoding(_ error: DecodingError) -> APIError {
        func path(_ context: DecodingError.Context, appending key: (any CodingKey)? = nil) -> String {
            let path = (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map(String.init) ?? $0.stringValue }
                .joined(separator: ".")
            return path.isEmpty ? "body" : path
        }
        let field: String
        let reason: String
        switch error {
        case .keyNotFound(let key, let context):
            (field, reason) = (path(context, appending: key), "is required")
        case .typeMismatch(let type, let context):
            (field, reason) = (path(context), "must be \(jsonKind(of: type))")
        case .valueNotFound(_, let context):
            (field, reason) = (path(context), "must not be null")
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            (field, reason) = (path(context), "has an invalid value")
        case .dataCorrupted(let context) where context.debugDescription.contains("not representable"):
            // Foundation reports a number too large for its field without the field's path.
            (field, reason) = ("body", "holds a number too large for its field")
        default:
            return APIError(.badRequest, code: .badRequest, message: "The request body is not valid JSON")
        }
        return validation(field: field, reason: reason)
    }
}

/// How a client would name the JSON a Swift type is decoded from.
private func jsonKind(of type: Any.Type) -> String {
    let name = String(describing: type)
    if name.hasPrefix("Dictionary") || name.hasPrefix("[") && name.contains(":") { return "a JSON object" }
    if name.hasPrefix("Array") || name.hasPrefix("[") { return "a JSON array" }
    switch name {
    case "String", "Substring": return "a string"
    case "Bool": return "true or false"
    case "Int", "Int64", "Int32", "Int16", "Int8", "UInt", "UInt64", "UInt32", "UInt16", "UInt8": return "an integer"
    case "Double", "Float", "Decimal": return "a number"
    default: return "a JSON object"
    }
}

extension Request {
    /// Decodes the JSON body. Unparseable JSON is a 400 and a missing or mistyped field a 422 naming it,
    /// both in the error envelope.
    public func decodeJSON<T: Decodable>(as type: T.Type, context: some RequestContext) async throws -> T {
        do {
            return try await context.requestDecoder.decode(type, from: self, context: context)
        } catch let error as DecodingError {
            throw APIError.decoding(error)
        }
    }

    /// Decodes a JSON body that may be absent: `nil` for an empty body, otherwise as ``decodeJSON(as:context:)``.
    public func decodeJSONIfPresent<T: Decodable>(as type: T.Type, context: some RequestContext) async throws -> T? {
        var request = self
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        guard body.readableBytes > 0 else { return nil }
        do {
            return try JSONDecoder.platform.decode(type, from: body)
        } catch let error as DecodingError {
            throw APIError.decoding(error)
        }
    }
}

/// An error of a service's own domain that has a meaning for clients (a 503 for an unavailable dependency, say).
/// The error itself, with its details, is what gets logged; clients see only ``apiError``.
public protocol APIErrorConvertible: Error {
    /// What the client is told.
    var apiError: APIError { get }
}
