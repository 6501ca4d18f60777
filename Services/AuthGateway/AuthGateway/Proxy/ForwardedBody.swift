import Hummingbird
import Platform
import NIOCore
import Synchronization

/// A client's request body on its way to a service: counted against the upload limit, and handed back to the
/// server only once no read of it is in flight.
///
/// Why the hand-back: Hummingbird reads whatever is left of a request body after the response is written, to find
/// the next request on the connection, through the same iterator the body reads from; that iterator traps when two
/// tasks call `next()` at once. AsyncHTTPClient's upload task can still be waiting in `next()` when the exchange is
/// over: the service answered before reading the body (a 404, a 413), or the upload failed half-way. So the
/// response to a forwarded request ends with ``handBack()``, which stops further reads and waits for the one in
/// flight (it returns when the client sends its next bytes or goes away).
final class ForwardedBody: Sendable {
    private struct State {
        var reading = false
        var handedBack = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// What the upload sees once the exchange is over.
    struct HandedBack: Error {}

    private let state = Mutex(State())
    private let body: RequestBody
    /// Bytes beyond this fail the upload with 413 (a chunked body has no declared size to refuse up front).
    let limit: Int64

    init(_ body: RequestBody, limit: Int64) {
        self.body = body
        self.limit = limit
    }

    /// The body as AsyncHTTPClient streams it; iterated once.
    var chunks: Chunks { Chunks(owner: self) }

    /// Ends the upload: no read starts after this, and it returns once the read in flight (if any) has.
    func handBack() async {
        await withCheckedContinuation { continuation in
            let wait = state.withLock { state in
                state.handedBack = true
                if state.reading { state.waiters.append(continuation) }
                return state.reading
            }
            if !wait { continuation.resume() }
        }
    }

    private func beginRead() -> Bool {
        state.withLock { state in
            guard !state.handedBack else { return false }
            state.reading = true
            return true
        }
    }

    private func endRead() {
        let waiters = state.withLock { state in
            state.reading = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The chunks of the body.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let owner: ForwardedBody

        struct AsyncIterator: AsyncIteratorProtocol {
            let owner: ForwardedBody
            var base: RequestBody.AsyncIterator
            var seen: Int64 = 0

            mutating func next() async throws -> ByteBuffer? {
                guard owner.beginRead() else { throw HandedBack() }
                let chunk: ByteBuffer?
                do {
                    chunk = try await base.next()
                    owner.endRead()
                } catch {
                    owner.endRead()
                    throw error
                }
                guard let chunk else { return nil }
                seen += Int64(chunk.readableBytes)
                if seen > owner.limit { throw APIError.bodyTooLarge(limit: owner.limit) }
                return chunk
            }
        }

        func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(owner: owner, base: owner.body.makeAsyncIterator())
        }
    }
}

extension Response {
    /// This response, ending with the hand-back of `upload` once its last byte is written (or writing failed).
    func handingBack(_ upload: ForwardedBody) -> Response {
        var response = self
        let body = self.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
            } catch {
                await upload.handBack()
                throw error
            }
            await upload.handBack()
        }
        return response
    }
}
