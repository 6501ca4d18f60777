import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Platform

/// Forwards a request to the service that owns its path and streams the answer back: neither body is held
/// in memory whole, so a 16 MB upload passes through in chunks.
struct GatewayProxy: Sendable {
    let httpClient: HTTPClient
    let upstreams: [Upstream: String]

    /// Answers up to this size are read whole before they are sent on; larger ones stream.
    static let bufferedResponseLimit = 64 * 1024

    /// Where the request goes and why it could not get there are the only things decided here; the access
    /// middleware has already authorized it.
    func forward(_ request: Request, context: PlatformRequestContext, to upstream: Upstream) async throws -> Response {
        guard let base = upstreams[upstream] else { throw APIError.upstreamUnavailable(upstream) }
        var outbound = HTTPClientRequest(url: base + (request.head.path ?? "/"))
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers = ProxyHeaders.upstreamRequest(
            request.headers, requestID: context.requestID, user: context.user, clientAddress: context.clientAddress)
        if let length = request.headers[.contentLength].flatMap(Int64.init) {
            if length > 0 { outbound.body = .stream(request.body, length: .known(length)) }
        } else if request.headers[.transferEncoding] != nil {
            outbound.body = .stream(request.body, length: .unknown)
        }

        let response: HTTPClientResponse
        do {
            // The read timeout of the client bounds a silent service; the deadline only stops runaway requests.
            response = try await httpClient.execute(outbound, deadline: .now() + .hours(1), logger: context.logger)
        } catch {
            throw Self.classify(error, upstream: upstream, logger: context.logger)
        }
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let headers = ProxyHeaders.clientResponse(response.headers)
        // A small answer of known size is read whole: one write instead of a stream's machinery per chunk.
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length <= Self.bufferedResponseLimit {
            let body = try await response.body.collect(upTo: length)
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
        }
        return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
    }

    /// 504 when the service did not answer in time, 503 when it could not be reached or broke the connection.
    static func classify(_ error: any Error, upstream: Upstream, logger: Logger) -> APIError {
        if let error = error as? HTTPClientError, error == .readTimeout || error == .deadlineExceeded {
            logger.warning("upstream timed out", metadata: ["upstream": "\(upstream.rawValue)"])
            return APIError(.gatewayTimeout, code: .gatewayTimeout, message: "The \(upstream.rawValue) service did not answer in time",
                            details: ["service": .string(upstream.rawValue)])
        }
        logger.warning("upstream unavailable", metadata: ["upstream": "\(upstream.rawValue)", "error": "\(error)"])
        return APIError.upstreamUnavailable(upstream)
    }
}

extension APIError {
    /// 503 for a service that cannot be reached.
    static func upstreamUnavailable(_ upstream: Upstream) -> APIError {
        APIError(.serviceUnavailable, code: .serviceUnavailable, message: "The \(upstream.rawValue) service is unavailable",
                 details: ["service": .string(upstream.rawValue)], headers: [.retryAfter: "5"])
    }
}
