import Platform
import Testing

@Suite struct RedisReplyTests {
    private func parse(_ text: String) throws -> RedisReply? {
        try RedisReply.parse(resp: Array(text.utf8))
    }

    @Test func decodesScalars() throws {
        #expect(try parse("+OK\r\n") == .status("OK"))
        #expect(try parse("-ERR unknown command 'x'\r\n") == .error("ERR unknown command 'x'"))
        #expect(try parse(":-42\r\n") == .integer(-42))
        #expect(try parse("$-1\r\n") == .null)
        #expect(try parse("*-1\r\n") == .null)
        #expect(try parse("$0\r\n\r\n") == .bulk([]))
    }

    @Test func bulkStringsAreBinarySafe() throws {
        let payload: [UInt8] = [0, 13, 10, 255, 65]
        let reply = try RedisReply.parse(resp: Array("$5\r\n".utf8) + payload + Array("\r\n".utf8))
        #expect(reply == .bulk(payload))
        #expect(reply?.bytes == payload)
    }

    @Test func decodesNestedArrays() throws {
        let reply = try parse("*2\r\n$8\r\nstream-1\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$4\r\ntype\r\n$1\r\nx\r\n")
        let entries = try StreamCommands.readReply(.array([try #require(reply)]))
        #expect(entries == [StreamEntry(id: "1-0", fields: [("type", Array("x".utf8))])])
    }

    @Test func incompleteInputIsNotAReply() throws {
        #expect(try parse("$5\r\nab") == nil)
    }

    @Test func malformedInputThrows() {
        #expect(throws: RedisError.self) { try parse("?what\r\n") }
    }

    @Test func accessors() {
        #expect(RedisReply.bulk(Array("12".utf8)).int == 12)
        #expect(RedisReply.status("PONG").string == "PONG")
        #expect(RedisReply.integer(3).string == nil)
        #expect(RedisReply.array([.null]).array == [.null])
    }

    @Test func serverErrorsKeepOnlyTheirKind() {
        let error = RedisError.server("ERR unknown command 'AUTHX', with args beginning with: 'hunter2'")
        #expect(error.code == .server("ERR"))
        #expect(!error.description.contains("hunter2"))
        #expect(RedisError.server("NOGROUP No such key").code == .server("NOGROUP"))
    }

    @Test func streamCommandShapes() throws {
        let command = StreamCommands.xadd(stream: "s", fields: [("a", [1, 2])], maxLength: 1000)
        #expect(command.map { String(decoding: $0, as: UTF8.self) } == ["XADD", "s", "MAXLEN", "~", "1000", "*", "a", "\u{1}\u{2}"])
        let claimed = try StreamCommands.autoClaimReply(.array([
            .bulk(Array("0-0".utf8)),
            .array([.array([.bulk(Array("5-1".utf8)), .array([.bulk(Array("k".utf8)), .bulk(Array("v".utf8))])])]),
            .array([.bulk(Array("4-0".utf8))]),
        ]))
        #expect(claimed.cursor == "0-0")
        #expect(claimed.entries.map(\.id) == ["5-1"])
        #expect(claimed.deleted == ["4-0"])
        let pending = try StreamCommands.pendingReply(.array([
            .array([.bulk(Array("5-1".utf8)), .bulk(Array("c1".utf8)), .integer(1500), .integer(3)]),
        ]))
        #expect(pending == [.init(id: "5-1", consumer: "c1", idleMilliseconds: 1500, deliveries: 3)])
        #expect(throws: RedisError.self) { try StreamCommands.pendingReply(.integer(1)) }
    }
}
