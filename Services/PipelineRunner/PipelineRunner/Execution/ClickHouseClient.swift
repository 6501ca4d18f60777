import Foundation
import Platform
import SharedModels

/// ClickHouse's HTTP interface for one run, over libcurl: statements as request bodies, rows as `FORMAT TSV`
/// bodies of an `INSERT` named in the URL. The credentials travel in `X-ClickHouse-User` / `X-ClickHouse-Key`
/// headers, never in a URL (which servers and proxies log).
struct ClickHouseClient: Sendable {
    let http: CurlHTTPClient
    /// `https://host:8443/`, or `http://` when the connection's sslmode is `disable` (the credentials then travel
    /// in clear text, as they would to PostgreSQL).
    let baseURL: String
    let database: String
    private let headers: [(name: String, value: String)]

    /// A client for the ClickHouse server that connection `credentials` describe (its HTTP port).
    init(credentials: InternalConnectionCredentials, http: CurlHTTPClient) {
        let scheme = credentials.sslmode == "disable" ? "http" : "https"
        let host = credentials.host.contains(":") ? "[\(credentials.host)]" : credentials.host
        self.http = http
        self.baseURL = "\(scheme)://\(host):\(credentials.port)/"
        self.database = credentials.database
        self.headers = [("X-ClickHouse-User", credentials.username), ("X-ClickHouse-Key", credentials.password)]
    }

    /// Runs one statement; its output as text.
    @discardableResult
    func execute(_ statement: String) async throws -> String {
        String(decoding: try await send(url: url([:]), body: Array(statement.utf8)), as: UTF8.self)
    }

    /// Sends one block of rows to `statement` (`INSERT INTO ... FORMAT TSV`).
    func insert(_ statement: String, rows: [UInt8]) async throws {
        try await send(url: url(["query": statement]), body: rows)
    }

    private func url(_ parameters: [String: String]) -> String {
        let pairs = parameters.merging(["database": database]) { first, _ in first }.sorted { $0.key < $1.key }
        return baseURL + "?" + pairs.map { "\($0.key)=\(Self.percentEncoded($0.value))" }.joined(separator: "&")
    }

    /// A query value with every byte but ASCII letters, digits and `-._~` percent-encoded.
    static func percentEncoded(_ value: String) -> String {
        var encoded = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                encoded += String(format: "%%%02X", byte)
            }
        }
        return encoded
    }

    @discardableResult
    private func send(url: String, body: [UInt8]) async throws -> [UInt8] {
        let response: TransferResponse
        do {
            response = try await http.execute(TransferRequest(method: "POST", url: url, headers: headers, body: body))
        } catch let error as TransferError {
            throw RunFailure(.connectorError, "ClickHouse at \(baseURL) cannot be reached: \(error.message)")
        }
        guard response.status == 200 else { throw RunFailure(.connectorError, Self.message(from: response)) }
        return response.body
    }

    /// ClickHouse's own words for a refusal (`Code: 60, e.displayText() = DB::Exception: Table x doesn't exist.`).
    static func message(from response: TransferResponse) -> String {
        var text = String(decoding: response.body.prefix(2_000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if let range = text.range(of: "e.displayText() = ") { text = String(text[range.upperBound...]) }
        if let range = text.range(of: ", e.what()") { text = String(text[..<range.lowerBound]) }
        text = text.replacingOccurrences(of: "DB::Exception: ", with: "")
        return "ClickHouse answered \(response.status): \(text.isEmpty ? "(no message)" : text)"
    }
}
