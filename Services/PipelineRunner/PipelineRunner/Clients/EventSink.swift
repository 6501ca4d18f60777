import Foundation
import Logging
import Platform
import SharedModels
import Synchronization

/// Where the service's facts and work go: jobs, run events, pipeline events and the audit trail.
protocol EventSink: Sendable {
    /// Publishes to the event's stream; throws when it cannot (the caller decides what that means).
    func publish(_ event: some StreamEvent) async throws
}

extension EventSink {
    /// Publishes a fact whose loss must not undo what already happened (an audit record, a pipeline event):
    /// a failure is logged, not thrown.
    func announce(_ event: some StreamEvent, logger: Logger) async {
        do {
            try await publish(event)
        } catch {
            logger.error("could not publish an event", metadata: ["stream": "\(type(of: event).stream.rawValue)", "type": "\(event.eventType)",
                                                                  "error": "\(error)"])
        }
    }
}

/// The platform's Redis streams.
struct StreamEventSink: EventSink {
    let publisher: StreamPublisher

    func publish(_ event: some StreamEvent) async throws {
        try await publisher.publish(event)
    }
}

/// Events kept in memory, for unit tests; `failing` makes every publish throw.
final class InMemoryEventSink: EventSink {
    private let state = Mutex<(events: [any StreamEvent], failing: Bool)>(([], false))

    struct Unavailable: Error {}

    /// Every event published so far of type `T`.
    func events<T: StreamEvent>(of type: T.Type) -> [T] { state.withLock { $0.events.compactMap { $0 as? T } } }

    /// Makes publishing fail (or work again).
    func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func publish(_ event: some StreamEvent) async throws {
        try state.withLock { state in
            if state.failing { throw Unavailable() }
            state.events.append(event)
        }
    }
}
