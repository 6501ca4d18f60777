import Foundation
import Logging
import SharedModels

/// Tells the platform what changed: every change goes to `platform:audit`, and pipelines coming and going to
/// `platform:pipeline-events` (the scheduler disables the tasks of a deleted pipeline). Losing such an event
/// must not undo the change, so failures are logged.
struct Announcer: Sendable {
    let events: any EventSink
    let service: String
    let logger: Logger

    /// Records `action` on `resource` by `actor`.
    func audit(_ action: String, _ resource: String, by actor: String?, details: [String: JSONValue] = [:]) async {
        await events.announce(AuditEvent(actor: actor ?? "unknown", action: action, resource: resource, service: service, details: details),
                              logger: logger)
    }

    /// Announces that pipelines were created, changed, deployed, deleted or restored.
    func pipelines(_ kind: PipelineEvent.Kind, _ ids: [Int64], projectID: Int64?) async {
        for id in ids {
            await events.announce(PipelineEvent(kind: kind, pipelineID: PublicID.pipeline.format(id),
                                                projectID: projectID.map(PublicID.project.format)), logger: logger)
        }
    }
}
