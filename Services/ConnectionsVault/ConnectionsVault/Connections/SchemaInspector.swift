import Foundation
import NIOPosix
import Platform
import SharedModels

/// A table of a customer's database, as listed by `GET /connections/{id}/tables`.
struct TableSummary: Encodable, Sendable {
    var schema: String
    var name: String
    var kind: String
    var estimatedRows: Int64

    enum CodingKeys: String, CodingKey {
        case schema, name, kind
        case estimatedRows = "estimated_rows"
    }
}

/// Reads the catalog of a customer's database with the connection's credentials (read at the moment of use).
/// Names from the request travel only as bound parameters.
struct SchemaInspector: Sendable {
    let threadPool: NIOThreadPool
    let connectTimeoutSeconds: Int

    func tables(_ credentials: ConnectionCredentials) async throws -> [TableSummary] {
        try await withConnection(credentials) { connection in
            try await connection.query("""
                SELECT n.nspname AS schema, c.relname AS name,
                       CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized_view' WHEN 'f' THEN 'foreign_table'
                                      ELSE 'table' END AS kind,
                       greatest(c.reltuples, 0)::bigint AS estimated_rows
                FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
                  AND has_table_privilege(c.oid, 'SELECT')
                ORDER BY 1, 2 LIMIT 10000
                """).map { row in
                TableSummary(schema: try row.decode("schema"), name: try row.decode("name"), kind: try row.decode("kind"),
                             estimatedRows: try row.decode("estimated_rows"))
            }
        }
    }

    /// The table's columns, primary key, indexes and row count; `nil` when there is no such table.
    func table(_ credentials: ConnectionCredentials, schema: String, name: String) async throws -> InternalTableSchema? {
        try await withConnection(credentials) { connection in
            let found = try await connection.query("""
                SELECT c.oid::bigint AS oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = \(schema) AND c.relname = \(name) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                """)
            guard let oid = try found.first?.decode("oid", as: Int64.self) else { return nil }
            let columns = try await connection.query("""
                SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
                       coalesce(a.attnum = ANY (pk.indkey::int2[]), false) AS primary_key,
                       pg_get_expr(d.adbin, d.adrelid) AS default_value
                FROM pg_catalog.pg_attribute a
                LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                LEFT JOIN pg_catalog.pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
                WHERE a.attrelid = \(oid)::oid AND a.attnum > 0 AND NOT a.attisdropped
                ORDER BY a.attnum
                """).map { row in
                InternalTableSchema.Column(name: try row.decode("name"), type: try row.decode("type"), nullable: try row.decode("nullable"),
                                           primaryKey: try row.decode("primary_key"), defaultValue: try row.decode("default_value"))
            }
            let indexes = try await connection.query("""
                SELECT i.relname AS name, ix.indisunique AS is_unique,
                       array(SELECT a.attname FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                             JOIN pg_catalog.pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                             ORDER BY k.position)::text[] AS columns
                FROM pg_catalog.pg_index ix JOIN pg_catalog.pg_class i ON i.oid = ix.indexrelid
                WHERE ix.indrelid = \(oid)::oid ORDER BY i.relname
                """).map { row in
                InternalTableSchema.Index(name: try row.decode("name"), columns: try row.decode("columns"), unique: try row.decode("is_unique"))
            }
            var rowCount = try await connection.query(
                "SELECT greatest(reltuples, 0)::bigint AS estimate FROM pg_catalog.pg_class WHERE oid = \(oid)::oid"
            ).first!.decode("estimate", as: Int64.self)
            // The planner's estimate is 0 until the table is analyzed; small tables are cheap to count exactly.
            if rowCount < 100_000, let table = try? PostgresIdentifier(name, schema: schema) {
                rowCount = try await connection.query("SELECT count(*) AS n FROM \(table)").first!.decode("n", as: Int64.self)
            }
            return InternalTableSchema(schema: schema, tableName: name, columns: columns, rowCount: rowCount, indexes: indexes)
        }
    }

    private func withConnection<T: Sendable>(_ credentials: ConnectionCredentials, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let configuration = credentials.configuration(connectTimeoutSeconds: connectTimeoutSeconds, applicationName: "data-platform-schema")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration, threadPool: threadPool)
        } catch {
            throw APIError(.badGateway, code: .connectorError, message: "The connection's database could not be reached or refused the credentials; run its test for details")
        }
        defer { connection.close() }
        do {
            return try await body(connection)
        } catch let error as PostgresError {
            // The customer's database failed a catalog statement (a privilege, a cancelled query, a connection that
            // dropped): its answer, not our failure. Only the stable code is passed on; the server's text may quote values.
            throw APIError(.badGateway, code: .connectorError, message: "The connection's database failed to describe its tables",
                           details: ["reason": .string(error.code.rawValue)])
        }
    }
}
