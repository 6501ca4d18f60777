import Foundation
import Platform
import SharedModels

/// Answers whether a pipeline exists, so `pipeline_run` tasks never name one that does not.
protocol PipelineDirectory: Sendable {
    func pipelineExists(_ id: String) async throws -> Bool
}

/// Asks pipeline-runner (`GET /internal/pipelines/{id}`) with a service token.
struct RemotePipelineDirectory: PipelineDirectory {
    /// pipeline-runner (`service.url.pipeline_runner`).
    let pipelineRunner: ServiceClient

    func pipelineExists(_ id: String) async throws -> Bool {
        try await pipelineRunner.exists("/internal/pipelines/\(ServiceClient.segment(id))", unavailable: Self.unavailable)
    }

    static let unavailable = APIError(.serviceUnavailable, code: .serviceUnavailable, message: "pipeline-runner cannot be asked about the pipeline")
}

/// Pipelines known in memory, for tests of the task rules.
typealias InMemoryPipelineDirectory = InMemoryDirectory<String>

extension InMemoryDirectory: PipelineDirectory where ID == String {
    func pipelineExists(_ id: String) async throws -> Bool { contains(id) }
}

/// Where no service token can be made: every question is answered 503.
struct UnreachablePipelineDirectory: PipelineDirectory {
    func pipelineExists(_ id: String) async throws -> Bool { throw RemotePipelineDirectory.unavailable }
}
