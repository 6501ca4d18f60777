import Foundation
import Platform
import Testing

@Suite struct MigrationTests {
    @Test func parsesFileNames() {
        #expect(MigrationSource.parse(fileName: "0001_init.sql")! == (1, "init"))
        #expect(MigrationSource.parse(fileName: "12_add_index_on_users.sql")! == (12, "add_index_on_users"))
        #expect(MigrationSource.parse(fileName: "README.md") == nil)
        #expect(MigrationSource.parse(fileName: "init.sql") == nil)
        #expect(MigrationSource.parse(fileName: "0000_zero.sql") == nil)
        #expect(MigrationSource.parse(fileName: "x1_bad.sql") == nil)
    }

    @Test func ordersByVersionNotByName() throws {
        let ordered = try MigrationSource.ordered([
            Migration(version: 10, name: "ten", sql: ""), Migration(version: 2, name: "two", sql: ""),
            Migration(version: 1, name: "one", sql: ""),
        ])
        #expect(ordered.map(\.version) == [1, 2, 10])
    }

    @Test func refusesDuplicateVersions() {
        #expect(throws: MigrationError.self) {
            try MigrationSource.ordered([Migration(version: 3, name: "a", sql: ""), Migration(version: 3, name: "b", sql: "")])
        }
    }

    @Test func checksumFollowsTheSQL() {
        let a = Migration(version: 1, name: "x", sql: "CREATE TABLE t (id int);")
        #expect(a.checksum == Migration(version: 1, name: "other", sql: "CREATE TABLE t (id int);").checksum)
        #expect(a.checksum != Migration(version: 1, name: "x", sql: "CREATE TABLE t (id bigint);").checksum)
        #expect(a.checksum.count == 64)
    }

    @Test func loadsADirectory() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "SELECT 2;".write(to: directory.appendingPathComponent("0002_second.sql"), atomically: true, encoding: .utf8)
        try "SELECT 1;".write(to: directory.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
        try "notes".write(to: directory.appendingPathComponent("NOTES.txt"), atomically: true, encoding: .utf8)
        let loaded = try MigrationSource.load(directory: directory)
        #expect(loaded == [Migration(version: 1, name: "first", sql: "SELECT 1;"), Migration(version: 2, name: "second", sql: "SELECT 2;")])
    }
}
