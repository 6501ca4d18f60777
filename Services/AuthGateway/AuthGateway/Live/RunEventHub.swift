import Foundation
import Platform
import SharedModels
import Synchronization

/// Hands the run events this gateway replica reads from `platform:run-events` to the live views that follow their
/// pipeline. A view that falls behind loses its oldest events, never the gateway's memory.
final class RunEventHub: Sendable {
    private let subscribers = Mutex<[String: [UUID: AsyncStream<RunEvent>.Continuation]]>([:])
    /// Events a subscriber may fall behind by before the oldest are dropped.
    let bufferSize: Int

    init(bufferSize: Int = 256) {
        self.bufferSize = bufferSize
    }

    /// The events of `pipeline`'s runs from now on, until the stream is dropped.
    func subscribe(pipeline: String) -> AsyncStream<RunEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream.makeStream(of: RunEvent.self, bufferingPolicy: .bufferingNewest(bufferSize))
        continuation.onTermination = { [weak self] _ in
            self?.subscribers.withLock { all in
                all[pipeline]?[id] = nil
                if all[pipeline]?.isEmpty == true { all[pipeline] = nil }
            }
        }
        subscribers.withLock { $0[pipeline, default: [:]][id] = continuation }
        return stream
    }

    /// Passes each event of `entries` that names a followed pipeline to its subscribers.
    func publish(_ entries: [StreamEntry]) {
        for entry in entries {
            guard let event = try? entry.decode(RunEvent.self), let pipeline = event.pipelineID else { continue }
            let followers = subscribers.withLock { Array(($0[pipeline] ?? [:]).values) }
            for follower in followers { follower.yield(event) }
        }
    }

    /// How many live views follow `pipeline`.
    func subscriberCount(pipeline: String) -> Int { subscribers.withLock { $0[pipeline]?.count ?? 0 } }
}
