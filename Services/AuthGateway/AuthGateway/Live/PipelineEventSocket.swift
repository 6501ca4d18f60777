import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import Platform
import SharedModels

/// `GET /ws/pipeline/{pipeline_id}?token=...`: a WebSocket that streams the run events of one pipeline as JSON.
///
/// Whether the caller may follow the pipeline is decided by the gateway itself, answering
/// `GET /api/v1/pipelines/{id}` with the caller's token: the same token checks, revocations, rate limits and role
/// rules as every request, and pipeline-runner's own answer (404 for a pipeline that does not exist). A refused
/// caller still gets the upgrade, then a close with code 1008 (policy violation) and the reason, which browsers
/// show; nothing else is sent to it.
struct PipelineEventSocket: Sendable {
    /// A message sent to the client.
    struct Message: Encodable, Sendable {
        var type: String
        var pipelineID: String
        var runID: String?
        /// `started`, `progress`, `completed`, `failed` or `cancelled`.
        var event: String?
        /// The run's status after the event: `running`, `success`, `failed` or `cancelled`.
        var status: String?
        var rowsProcessed: Int64?
        var bytesProcessed: Int64?
        var stageTimingsMS: [String: Double]?
        var error: String?
        var errorCode: String?
        var timestamp: Date

        enum CodingKeys: String, CodingKey {
            case type, status, event, error, timestamp
            case pipelineID = "pipeline_id", runID = "run_id", rowsProcessed = "rows_processed", bytesProcessed = "bytes_processed"
            case stageTimingsMS = "stage_timings_ms", errorCode = "error_code"
        }

        /// The first message: the socket follows the pipeline from now on.
        static func subscribed(_ pipeline: String) -> Message {
            Message(type: "subscribed", pipelineID: pipeline, timestamp: Date())
        }

        /// A run event as the client reads it.
        init(_ event: RunEvent, pipeline: String) {
            self.init(type: "run", pipelineID: pipeline, runID: event.runID, event: event.kind.rawValue, status: Self.status(after: event.kind),
                      rowsProcessed: event.rowsWritten, bytesProcessed: event.bytes, stageTimingsMS: event.stageTimingsMS,
                      error: event.error, errorCode: event.errorCode, timestamp: event.occurredAt)
        }

        private init(type: String, pipelineID: String, runID: String? = nil, event: String? = nil, status: String? = nil,
                     rowsProcessed: Int64? = nil, bytesProcessed: Int64? = nil, stageTimingsMS: [String: Double]? = nil,
                     error: String? = nil, errorCode: String? = nil, timestamp: Date) {
            self.type = type
            self.pipelineID = pipelineID
            self.runID = runID
            self.event = event
            self.status = status
            self.rowsProcessed = rowsProcessed
            self.bytesProcessed = bytesProcessed
            self.stageTimingsMS = stageTimingsMS
            self.error = error
            self.errorCode = errorCode
            self.timestamp = timestamp
        }

        static func status(after kind: RunEvent.Kind) -> String {
            switch kind {
            case .started, .progress: "running"
            case .completed: "success"
            case .failed: "failed"
            case .cancelled: "cancelled"
            }
        }
    }

    /// Why a caller may not follow a pipeline: the gateway's answer to reading it.
    struct Refusal: Error, Equatable {
        var reason: String
    }

    let hub: RunEventHub
    /// Answers a request as the gateway would (the gateway's whole responder).
    let answer: @Sendable (Request, PlatformRequestContext) async throws -> Response
    /// Reads an accepted token's expiry: the socket closes when its token would no longer be accepted.
    let verifier: AccessTokenVerifier

    /// The pipeline id of a path `/ws/pipeline/{id}`, or `nil` for any other path.
    static func pipelineID(inPath path: String) -> String? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 4, segments[0].isEmpty, segments[1] == "ws", segments[2] == "pipeline", !segments[3].isEmpty,
              segments[3].utf8.count <= 100, segments[3].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { return nil }
        return String(segments[3])
    }

    /// The server's upgrade rule: WebSocket requests to `/ws/pipeline/{id}` upgrade; anything else is refused.
    func shouldUpgrade(_ head: HTTPRequest, channel: any Channel, logger: Logger) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let request = Request(head: head, body: .init(buffer: ByteBuffer()))
        guard let pipeline = Self.pipelineID(inPath: request.uri.path) else { return .dontUpgrade }
        let token = request.uri.queryParameters["token"].map(String.init) ?? AccessTokenVerifier.bearerToken(in: head.headerFields)
        let refusal = await authorize(pipeline: pipeline, token: token, channel: channel, logger: logger)
        let expiry: Date? = if refusal == nil, let token { try? await verifier.verify(token).expiresAt } else { nil }
        return .upgrade([:]) { inbound, outbound, _ in
            guard refusal == nil, let expiry else {
                try await outbound.close(.policyViolation, reason: refusal?.reason ?? "the token cannot be read")
                return
            }
            try await stream(pipeline, until: expiry, inbound: inbound, outbound: outbound)
        }
    }

    /// `nil` when the gateway lets the token's holder read the pipeline; otherwise why not.
    func authorize(pipeline: String, token: String?, channel: any Channel, logger: Logger) async -> Refusal? {
        guard let token, !token.isEmpty else { return Refusal(reason: "a token is required (?token=...)") }
        var fields = HTTPFields()
        fields[.authorization] = "Bearer \(token)"
        let probe = Request(head: HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/api/v1/pipelines/\(pipeline)", headerFields: fields),
                            body: .init(buffer: ByteBuffer()))
        var status: HTTPResponse.Status
        do {
            let response = try await answer(probe, PlatformRequestContext(source: .init(channel: channel, logger: logger)))
            status = response.status
            // A proxied answer is streamed: read it to its end, so its connection can carry the next call.
            try await response.body.write(DiscardingBodyWriter())
        } catch {
            status = APIError.from(error).status
        }
        switch status.code {
        case 200: return nil
        case 401: return Refusal(reason: "the token is missing, invalid, expired or revoked")
        case 403: return Refusal(reason: "the token's role may not read \(pipeline)")
        case 404: return Refusal(reason: "\(pipeline) does not exist")
        case 429: return Refusal(reason: "too many requests; try again later")
        default: return Refusal(reason: "\(pipeline) cannot be checked now (\(status.code)); try again later")
        }
    }

    /// Sends the pipeline's run events until the client goes away, or until its token expires (then it is closed
    /// with 1008, and the client signs in again). Reading the client's frames at the same time is what answers its
    /// pings and its close.
    private func stream(_ pipeline: String, until expiry: Date, inbound: WebSocketInboundStream,
                        outbound: WebSocketOutboundWriter) async throws {
        let events = hub.subscribe(pipeline: pipeline)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        try await outbound.write(.text(String(decoding: try encoder.encode(Message.subscribed(pipeline)), as: UTF8.self)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { for try await _ in inbound {} }
            group.addTask {
                try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow)))
                try await outbound.close(.policyViolation, reason: "the token has expired")
            }
            group.addTask {
                for await event in events {
                    try await outbound.write(.text(String(decoding: try encoder.encode(Message(event, pipeline: pipeline)), as: UTF8.self)))
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Reads a response body to its end and keeps nothing.
private struct DiscardingBodyWriter: ResponseBodyWriter {
    mutating func write(_ buffer: ByteBuffer) async throws {}
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
