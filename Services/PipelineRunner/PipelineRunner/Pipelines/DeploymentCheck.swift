import Foundation
import SharedModels

/// What deploying checks against the world, through connections-vault: every connection exists and is active,
/// the source table and every column the pipeline names exist, and each target can take the result.
struct DeploymentCheck: Sendable {
    let catalog: any ConnectionCatalog

    /// Every problem, each at its JSON path; empty when the pipeline can be deployed.
    func problems(of specification: PipelineSpecification) async throws -> [SpecificationProblem] {
        var problems: [SpecificationProblem] = []
        var usable: [Int64: Bool] = [:]
        for (path, id) in specification.connections {
            if let known = usable[id] {
                if !known { problems.append(SpecificationProblem(path: path, reason: "connection \(id) cannot be used (see above)")) }
                continue
            }
            guard let connection = try await catalog.connection(id) else {
                problems.append(SpecificationProblem(path: path, reason: "connection \(id) does not exist"))
                usable[id] = false
                continue
            }
            usable[id] = connection.isActive
            if !connection.isActive { problems.append(SpecificationProblem(path: path, reason: "connection \(id) (\(connection.name)) is inactive")) }
        }

        var columns: [String]?
        for (index, source) in specification.sources.enumerated() {
            guard source.type == .postgresql, let id = source.connectionID, usable[id] == true, let table = source.config.table else { continue }
            let path = "sources[\(index)]"
            guard let found = try await inspect(table, connection: id, at: path + ".config.table", problems: &problems) else { continue }
            let names = found.columns.map(\.name)
            columns = names
            if let cursor = source.incremental?.cursorColumn, !names.contains(cursor) {
                problems.append(SpecificationProblem(path: path + ".incremental.cursor_column", reason: "column \(cursor) does not exist in \(table)"))
            }
        }

        let flow = ColumnFlow.trace(columns, through: specification.transformations)
        problems += flow.problems

        for (index, target) in specification.targets.enumerated() {
            let path = "targets[\(index)]"
            if let result = flow.columns {
                for (position, key) in target.config.key.enumerated() where !result.contains(key) {
                    problems.append(SpecificationProblem(path: "\(path).config.key[\(position)]",
                                                         reason: "\(key) is not a column of the result (\(result.joined(separator: ", ")))"))
                }
            }
            guard target.type == .postgresql, let id = target.connectionID, usable[id] == true else { continue }
            let table = target.config.table
            guard let found = try await inspect(table, connection: id, at: path + ".config.table", problems: &problems,
                                                missing: target.config.createTable ? nil : "; set create_table to true to have it created") else { continue }
            let existing = Set(found.columns.map(\.name))
            for column in flow.columns ?? [] where !existing.contains(column) {
                problems.append(SpecificationProblem(path: path + ".config.table", reason: "\(table) has no column \(column), which the pipeline produces"))
            }
        }
        return problems
    }

    /// The table, or `nil` after recording why not; `missing` is the hint for a table that does not exist (`nil`:
    /// a missing table is fine, it will be created).
    private func inspect(_ table: String, connection id: Int64, at path: String, problems: inout [SpecificationProblem],
                         missing: String? = "") async throws -> InternalTableSchema? {
        // As PostgreSQL reads the name: unquoted parts fold to lower case.
        let name = (try? SQLTableName(parsing: table)).map { "\($0.schema.name).\($0.table.name)" } ?? table
        do {
            if let found = try await catalog.table(name, connection: id) { return found }
            if let missing { problems.append(SpecificationProblem(path: path, reason: "table \(table) does not exist in connection \(id)\(missing)")) }
        } catch let refusal as CatalogRefusal {
            problems.append(SpecificationProblem(path: path, reason: refusal.reason))
        }
        return nil
    }
}
