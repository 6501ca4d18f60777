import Foundation
import Platform
import Testing

@Suite struct PostgresCodingTests {
    @Test(arguments: [
        ("2024-02-29 23:59:59.123456+00", 1_709_251_199.123456),
        ("2024-02-29 23:59:59+00", 1_709_251_199.0),
        ("1970-01-01 00:00:00+00", 0.0),
        ("1969-12-31 23:59:59.5+00", -0.5),
        ("2025-10-02 12:30:00+05:30", 1_759_388_400.0),
        ("2025-10-02 02:00:00-08", 1_759_399_200.0),
        ("2025-10-02T10:00:00Z", 1_759_399_200.0),
        ("2025-10-02", 1_759_363_200.0),
        ("2000-03-01 00:00:00", 951_868_800.0),
    ])
    func parsesTimestamps(text: String, epoch: Double) throws {
        let date = try #require(PostgresTimestamp.parse(text))
        #expect(abs(date.timeIntervalSince1970 - epoch) < 0.000_001)
    }

    @Test(arguments: ["", "2024-13-01", "2024-02-30x", "24-01-01", "2024-01-01 25:00:00", "infinity"])
    func rejectsMalformedTimestamps(text: String) {
        #expect(PostgresTimestamp.parse(text) == nil)
    }

    @Test func timestampsRoundTripToTheMicrosecond() throws {
        for epoch in [0.0, 1_709_251_199.123456, -86_400.000_001, 4_102_444_800.5] {
            let date = Date(timeIntervalSince1970: epoch)
            let text = PostgresTimestamp.format(date)
            let back = try #require(PostgresTimestamp.parse(text))
            #expect(abs(back.timeIntervalSince1970 - epoch) < 0.000_001, "\(text)")
        }
        #expect(PostgresTimestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
    }

    @Test func arrayLiterals() throws {
        #expect(PostgresArrayLiteral.parse("{}") == [])
        #expect(PostgresArrayLiteral.parse("{a,b}") == ["a", "b"])
        #expect(PostgresArrayLiteral.parse(#"{"a b","c\"d","e\\f",NULL,"NULL"}"#) == ["a b", "c\"d", "e\\f", nil, "NULL"])
        #expect(PostgresArrayLiteral.parse("{a,b") == nil)
        #expect(PostgresArrayLiteral.parse("{{a},{b}}") == nil)
        let values = ["plain", "with \"quote\"", "back\\slash", "comma,here", ""]
        let encoded = try #require(values.postgresText)
        #expect(try [String](postgresText: encoded) == values)
        #expect(throws: PostgresDecodingError.self) { try [String](postgresText: "{a,NULL}") }
    }

    @Test func scalars() throws {
        #expect(try Bool(postgresText: "t") == true)
        #expect(try Bool(postgresText: "f") == false)
        #expect(throws: PostgresDecodingError.self) { try Bool(postgresText: "maybe") }
        #expect(try Int(postgresText: "-9223372036854775808") == Int.min)
        #expect(throws: PostgresDecodingError.self) { try Int32(postgresText: "3000000000") }
        #expect(try Double(postgresText: "NaN").isNaN)
        #expect(try Double(postgresText: "-Infinity") == -.infinity)
        #expect(Double.infinity.postgresText == "Infinity")
        let uuid = UUID()
        #expect(try UUID(postgresText: uuid.postgresText!) == uuid)
        #expect(Optional<Int>.none.postgresText == nil)
    }

    @Test func byteaRoundTrip() throws {
        let bytes = PostgresBytes([0, 1, 0xab, 0xff])
        #expect(bytes.postgresText == "\\x0001abff")
        #expect(try PostgresBytes(postgresText: "\\x0001ABff") == bytes)
        #expect(throws: PostgresDecodingError.self) { try PostgresBytes(postgresText: "\\x0") }
    }

    @Test func jsonValues() throws {
        struct Payload: Codable, Equatable, Sendable { var name: String; var count: Int }
        let json = PostgresJSON(Payload(name: "a", count: 2))
        #expect(json.postgresText == #"{"count":2,"name":"a"}"#)
        #expect(try PostgresJSON<Payload>(postgresText: #"{"name":"b","count":3}"#).value == Payload(name: "b", count: 3))
        #expect(throws: PostgresDecodingError.self) { try PostgresJSON<Payload>(postgresText: "{") }
    }

    @Test func interpolationBindsValuesInsteadOfSplicing() throws {
        let name = "Robert'); DROP TABLE students;--"
        let missing: Int? = nil
        let table = try PostgresIdentifier("my \"odd\" table", schema: "app")
        let query: PostgresQuery = "SELECT * FROM \(table) WHERE name = \(name) AND age = \(42) AND parent = \(missing)"
        #expect(query.sql == #"SELECT * FROM "app"."my ""odd"" table" WHERE name = $1 AND age = $2 AND parent = $3"#)
        #expect(query.binds == [name, "42", nil])
    }

    @Test func identifiersAreValidated() throws {
        #expect(throws: PostgresIdentifier.InvalidIdentifier.self) { try PostgresIdentifier("") }
        #expect(throws: PostgresIdentifier.InvalidIdentifier.self) { try PostgresIdentifier(String(repeating: "x", count: 64)) }
        #expect(throws: PostgresIdentifier.InvalidIdentifier.self) { try PostgresIdentifier("a\u{0}b") }
        #expect(try PostgresIdentifier(qualified: "sales.orders").quoted == #""sales"."orders""#)
        #expect(try PostgresIdentifier(qualified: #""Sales"."Order Items""#).quoted == #""Sales"."Order Items""#)
    }
}

@Suite struct PostgresErrorTests {
    @Test(arguments: [
        ("23505", PostgresError.Code.uniqueViolation), ("23503", .foreignKeyViolation), ("23502", .notNullViolation),
        ("42P01", .undefinedTable), ("42703", .undefinedColumn), ("22P02", .invalidInput), ("22003", .invalidInput),
        ("40001", .serializationFailure), ("57014", .queryCanceled), ("28P01", .authenticationFailed),
        ("08006", .connectionFailure), ("57P01", .adminShutdown), ("XX000", .other),
    ])
    func mapsSQLStates(state: String, code: PostgresError.Code) {
        #expect(PostgresError.code(forSQLState: state) == code)
    }

    @Test func descriptionNeverCarriesServerText() {
        let error = PostgresError(
            code: .uniqueViolation, sqlState: "23505", constraint: "users_email_key", table: "users",
            serverMessage: "Key (email)=(secret@example.com) already exists")
        #expect(error.description.contains("users_email_key"))
        #expect(!error.description.contains("secret@example.com"))
    }

    @Test func classifiesConnectionFailures() {
        let auth = PostgresError.connectionFailure(libpqMessage:
            "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"app\"")
        #expect(auth.code == .authenticationFailed)
        let refused = PostgresError.connectionFailure(libpqMessage:
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running")
        #expect(refused.code == .connectionFailure)
        #expect(refused.reason == "connection refused")
        #expect(PostgresError.connectionFailure(libpqMessage: "timeout expired").reason == "connect timed out")
        #expect(auth.isConnectionLevel)
    }
}
