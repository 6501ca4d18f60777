@testable import AuthGateway
import Foundation
import Platform
import SharedModels
import Testing

@Suite struct RunEventHubTests {
    func entry(_ event: RunEvent) throws -> StreamEntry {
        StreamEntry(id: "1-0", fields: [("type", Array(event.eventType.utf8)), ("payload", Array(try JSONEncoder.platform.encode(event)))])
    }

    @Test func aSubscriberGetsItsPipelinesEventsAndIsForgottenWhenItStops() async throws {
        let hub = RunEventHub()
        var events: AsyncStream<RunEvent>? = hub.subscribe(pipeline: "pipeline_1")
        #expect(hub.subscriberCount(pipeline: "pipeline_1") == 1)
        hub.publish([try entry(RunEvent(runID: "run_9", pipelineID: "pipeline_2", kind: .started)),
                      try entry(RunEvent(runID: "run_7", pipelineID: "pipeline_1", kind: .completed, rowsWritten: 5)),
                      StreamEntry(id: "2-0", fields: [("payload", Array("not json".utf8))])])
        var iterator = events!.makeAsyncIterator()
        let first = await iterator.next()
        #expect(first?.runID == "run_7" && first?.rowsWritten == 5)
        // A socket that goes away drops its stream: the hub forgets it.
        events = nil
        iterator = AsyncStream<RunEvent>.makeStream().stream.makeAsyncIterator()
        #expect(hub.subscriberCount(pipeline: "pipeline_1") == 0)
    }

    @Test func aSlowSubscriberLosesItsOldestEventsNotTheHubsMemory() async throws {
        let hub = RunEventHub(bufferSize: 2)
        let events = hub.subscribe(pipeline: "pipeline_1")
        hub.publish(try (1...5).map { try entry(RunEvent(runID: "run_\($0)", pipelineID: "pipeline_1", kind: .progress)) })
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next()?.runID == "run_4")
        #expect(await iterator.next()?.runID == "run_5")
    }
}
