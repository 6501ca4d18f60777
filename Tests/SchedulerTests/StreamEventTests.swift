import Foundation
import Platform
import SharedModels
import Testing

/// The payloads the scheduler reads from pipeline-runner, as they travel in stream entries.
@Suite struct StreamEventTests {
    func decode<Event: StreamEvent>(_ json: String, as type: Event.Type) throws -> Event {
        try StreamEntry(id: "1-0", fields: [("payload", Array(json.utf8))]).decode(Event.self)
    }

    func roundTrip<Event: StreamEvent>(_ event: Event) throws -> Event {
        try StreamEntry(id: "1-0", fields: StreamCodec.fields(of: event)).decode(Event.self)
    }

    @Test func runEventsOfPipelineRunnersOwnRunsNameTheSchedulersRun() throws {
        let event = try decode(#"""
            {"run_id": "run_7", "scheduler_run_id": "taskrun_12", "job_id": "task_3:1:1", "task_id": 3, "kind": "completed", "rows_read": 10,
             "rows_written": 9, "bytes": 512, "stage_timings_ms": {"load": 1.5}, "occurred_at": "2025-01-01T00:00:00Z"}
            """#, as: RunEvent.self)
        #expect(event.runID == "run_7" && event.schedulerRunID == "taskrun_12" && event.taskID == 3)
        // Events written before the field existed still decode.
        let older = try decode(#"""
            {"run_id": "taskrun_12", "kind": "started", "rows_read": 0, "rows_written": 0, "bytes": 0, "stage_timings_ms": {},
             "occurred_at": "2025-01-01T00:00:00Z"}
            """#, as: RunEvent.self)
        #expect(older.runID == "taskrun_12" && older.schedulerRunID == nil)
        let sent = RunEvent(runID: "run_7", schedulerRunID: "taskrun_12", kind: .started, occurredAt: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(try roundTrip(sent) == sent)
    }

    @Test func pipelineEventsKeepTheirKindAndIds() throws {
        let event = try decode(#"""
            {"kind": "pipeline.deleted", "pipeline_id": "pipeline_3", "project_id": "project_1", "occurred_at": "2025-01-01T00:00:00Z"}
            """#, as: PipelineEvent.self)
        #expect(event.kind == .deleted && event.pipelineID == "pipeline_3" && event.projectID == "project_1")
        #expect(event.eventType == "pipeline.deleted" && PipelineEvent.stream.rawValue == "platform:pipeline-events")
        let sent = PipelineEvent(kind: .restored, pipelineID: "pipeline_3", occurredAt: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(try roundTrip(sent) == sent)
    }
}
