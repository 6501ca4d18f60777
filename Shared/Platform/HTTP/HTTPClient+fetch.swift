import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// A service's answer to another service, read whole.
public struct FetchedResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// The headers.
    public var headers: HTTPHeaders
    /// The whole body.
    public var body: ByteBuffer
}

extension HTTPClient {
    /// One call to another service with its answer read to the end, whatever the status: a body left unread is
    /// never taken off its connection, which then cannot carry the next call. A body over `limit` bytes fails the
    /// call (`NIOTooManyBytesError`).
    public func fetch(_ request: HTTPClientRequest, timeout: TimeAmount, limit: Int = 1 << 20) async throws -> FetchedResponse {
        let response = try await execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: limit)
        return FetchedResponse(status: response.status, headers: response.headers, body: body)
    }
}
