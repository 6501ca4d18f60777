import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SharedModels

/// Keeps a sane client `X-Request-Id` or makes one, puts it in the logger's metadata and echoes it back.
public struct RequestIDMiddleware<Context: RequestIDContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let requestID = request.headers[.requestID].flatMap { Self.isSane($0) ? $0 : nil } ?? Self.generate()
        context.requestID = requestID
        context.logger[metadataKey: "request_id"] = "\(requestID)"
        var response = try await next(request, context)
        response.headers[.requestID] = requestID
        return response
    }

    /// 1–128 characters of letters, digits, `-`, `_`, `.`, `:`.
    public static func isSane(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.count <= 128 && value.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122)
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: ":")
        }
    }

    /// `req_` and 16 random hex digits.
    public static func generate() -> String {
        "req_" + String(UInt64.random(in: .min ... .max), radix: 16).leftPadded(to: 16)
    }
}

/// Turns every thrown error into the contract's error envelope; unknown errors become a 500 that reveals
/// nothing, and are logged with their (secret-free) description. A request that no route takes, on a path the
/// service's API document describes with other methods, is a 405 naming them in `Allow`.
public struct ErrorEnvelopeMiddleware<Context: RequestIDContext>: RouterMiddleware {
    /// The routes of the service, for 405 instead of 404.
    let document: OpenAPIDocument?

    /// Creates the middleware.
    public init(document: OpenAPIDocument? = nil) {
        self.document = document
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var apiError = APIError.from(error)
            // HEAD is GET's to answer, so a path with GET is never a 405 for HEAD.
            if let error = error as? HTTPError, error.status == .notFound,
               let allowed = document?.declaredMethods(forPath: request.uri.path), !allowed.contains(request.method.rawValue),
               !(request.method == .head && allowed.contains("GET")) {
                apiError = APIError(.methodNotAllowed, code: .methodNotAllowed, message: "\(request.method) is not a method of this route",
                                    headers: [.allow: allowed.joined(separator: ", ")])
            }
            if apiError.status.code >= 500 {
                context.logger.error("request failed", metadata: [
                    "error": "\(error)", "error_type": "\(String(reflecting: type(of: error)))",
                    "path": "\(request.uri.path)", "method": "\(request.method)",
                ])
            }
            return Self.response(for: apiError, requestID: context.requestID)
        }
    }

    /// The JSON response for an error.
    public static func response(for error: APIError, requestID: String) -> Response {
        let envelope = ErrorEnvelope(error: .init(
            code: error.code, message: error.message, details: error.details, requestID: requestID))
        let body = (try? JSONEncoder.platform.encode(envelope)) ?? Data()
        var headers = error.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    public static let requestID = HTTPField.Name("X-Request-Id")!
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
