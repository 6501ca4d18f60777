import Foundation
import NIOPosix
import Platform

/// The answer of `POST /connections/{id}/test`.
struct ConnectionTestResult: Encodable, Sendable {
    struct Details: Encodable, Sendable {
        var connectionEstablished: Bool
        var authenticationSuccessful: Bool
        var queryExecutionSuccessful: Bool

        enum CodingKeys: String, CodingKey {
            case connectionEstablished = "connection_established"
            case authenticationSuccessful = "authentication_successful"
            case queryExecutionSuccessful = "query_execution_successful"
        }
    }

    struct Failure: Encodable, Sendable {
        var code: String
        var message: String
    }

    struct Performance: Encodable, Sendable {
        var roundTrips: Int
        var p50Ms: Double
        var p95Ms: Double
        var p99Ms: Double

        enum CodingKeys: String, CodingKey {
            case roundTrips = "round_trips"
            case p50Ms = "p50_ms"
            case p95Ms = "p95_ms"
            case p99Ms = "p99_ms"
        }
    }

    var connectionID: Int64
    var testStatus: String
    var latencyMs: Double
    var testedAt: Date
    var details: Details
    var error: Failure?
    var performance: Performance?

    enum CodingKeys: String, CodingKey {
        case connectionID = "connection_id"
        case testStatus = "test_status"
        case latencyMs = "latency_ms"
        case testedAt = "tested_at"
        case details, error, performance
    }
}

/// Connects to a customer's database with credentials just read from the vault, runs `SELECT 1`, and says
/// what worked. The credentials live only for the call; failures carry a safe message (never the password,
/// never the server's text) and tell an unreachable server from rejected credentials.
struct ConnectionTester: Sendable {
    let threadPool: NIOThreadPool
    let connectTimeoutSeconds: Int

    func test(connectionID: Int64, credentials: ConnectionCredentials, measurePerformance: Bool) async -> ConnectionTestResult {
        let started = ContinuousClock.now
        let testedAt = Date()
        var details = ConnectionTestResult.Details(connectionEstablished: false, authenticationSuccessful: false, queryExecutionSuccessful: false)
        var failure: ConnectionTestResult.Failure?
        var performance: ConnectionTestResult.Performance?
        let configuration = credentials.configuration(connectTimeoutSeconds: connectTimeoutSeconds, applicationName: "data-platform-connection-test")
        do {
            let connection = try await PostgresConnection.connect(configuration, threadPool: threadPool)
            defer { connection.close() }
            details.connectionEstablished = true
            details.authenticationSuccessful = true
            do {
                try await connection.query("SELECT 1")
                details.queryExecutionSuccessful = true
                if measurePerformance { performance = try await Self.measure(connection) }
            } catch {
                failure = .init(code: "QUERY_FAILED", message: "Connected, but a test query failed")
            }
        } catch let error as PostgresError {
            switch error.code {
            case .authenticationFailed:
                details.connectionEstablished = true
                failure = .init(code: "AUTHENTICATION_FAILED", message: "The server rejected the user name or password")
            case .invalidDatabase:
                details.connectionEstablished = true
                details.authenticationSuccessful = true
                failure = .init(code: "DATABASE_NOT_FOUND", message: "The database does not exist on the server")
            default:
                failure = .init(code: "CONNECTION_FAILED", message: "The server could not be reached within \(connectTimeoutSeconds) s")
            }
        } catch {
            failure = .init(code: "CONNECTION_FAILED", message: "The server could not be reached")
        }
        let latency = (ContinuousClock.now - started).secondsValue * 1000
        return ConnectionTestResult(
            connectionID: connectionID, testStatus: failure == nil ? "success" : "failed",
            latencyMs: (latency * 100).rounded() / 100, testedAt: testedAt, details: details, error: failure, performance: performance)
    }

    /// 20 round trips of `SELECT 1`: p50, p95, p99.
    static func measure(_ connection: PostgresConnection) async throws -> ConnectionTestResult.Performance {
        var samples: [Double] = []
        for _ in 0..<20 {
            let start = ContinuousClock.now
            try await connection.query("SELECT 1")
            samples.append((ContinuousClock.now - start).secondsValue * 1000)
        }
        func percentile(_ p: Double) -> Double { (samples.percentile(p) * 1000).rounded() / 1000 }
        return .init(roundTrips: samples.count, p50Ms: percentile(0.5), p95Ms: percentile(0.95), p99Ms: percentile(0.99))
    }
}
