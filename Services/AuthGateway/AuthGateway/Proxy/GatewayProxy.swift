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
    /// The largest request body forwarded (`gateway.upload.max_bytes`); larger ones get 413.
    let maxBodySize: Int64

    /// Answers up to this size are read whole before they are sent on; larger ones stream.
    static let bufferedResponseLimit = 64 * 1024

    /// Where the request goes and why it could not get there are the only things decided here; the access
    /// middleware has already authorized it. Every outcome of a request with a body, failures included, is a
    /// response that hands the body back to the server when it is written (``ForwardedBody``).
    func forward(_ request: Request, context: PlatformRequestContext, to upstream: Upstream) async throws -> Response {
        guard let base = upstreams[upstream] else { throw APIError.upstreamUnavailable(upstream) }
        var outbound = HTTPClientRequest(url: base + (request.head.path ?? "/"))
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers = ProxyHeaders.upstreamRequest(
            request.headers, requestID: context.requestID, user: context.user, clientAddress: context.clientAddress)
        var upload: ForwardedBody?
        if let length = request.headers[.contentLength].flatMap(Int64.init) {
            guard length <= maxBodySize else { throw APIError.bodyTooLarge(limit: maxBodySize) }
            if length > 0 {
                let body = ForwardedBody(request.body, limit: length)
                outbound.body = .stream(body.chunks, length: .known(length))
                upload = body
            }
        } else if request.headers[.transferEncoding] != nil {
            // No declared size: count while streaming and cut the upload off past the limit.
            let body = ForwardedBody(request.body, limit: maxBodySize)
            outbound.body = .stream(body.chunks, length: .unknown)
            upload = body
        }
        guard let upload else { return try await exchange(outbound, context: context, upstream: upstream) }
        do {
            return try await exchange(outbound, context: context, upstream: upstream).handingBack(upload)
        } catch {
            return ErrorEnvelopeMiddleware<PlatformRequestContext>.response(for: APIError.from(error), requestID: context.requestID)
                .handingBack(upload)
        }
    }

    /// Sends the request and turns the service's answer into the client's response; a failure to get one is
    /// a 503 or 504 (``classify(_:upstream:logger:)``).
    private func exchange(_ outbound: HTTPClientRequest, context: PlatformRequestContext, upstream: Upstream) async throws -> Response {
        do {
            // The read timeout of the client bounds a silent service; the deadline only stops runaway requests.
            let response = try await httpClient.execute(outbound, deadline: .now() + .hours(1))
            let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
            let headers = ProxyHeaders.clientResponse(response.headers)
            // A small answer of known size is read whole: one write instead of a stream's machinery per chunk.
            if let length = response.headers.first(name: "content-length").flatMap(Int.init), length <= Self.bufferedResponseLimit {
                let body = try await response.body.collect(upTo: length)
                return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: body))
            }
            return Response(status: status, headers: headers, body: ResponseBody(asyncSequence: response.body))
        } catch let error as APIError {
            throw error
        } catch {
            throw Self.classify(error, upstream: upstream, logger: context.logger)
        }
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
    /// 413 for a body over the gateway's limit.
    static func bodyTooLarge(limit: Int64) -> APIError {
        APIError(.contentTooLarge, code: .payloadTooLarge, message: "The request body is larger than \(limit) bytes",
                 details: ["limit": .number(Double(limit))])
    }

    /// 503 for a service that cannot be reached.
    static func upstreamUnavailable(_ upstream: Upstream) -> APIError {
        APIError(.serviceUnavailable, code: .serviceUnavailable, message: "The \(upstream.rawValue) service is unavailable",
                 details: ["service": .string(upstream.rawValue)], headers: [.retryAfter: "5"])
    }
}
