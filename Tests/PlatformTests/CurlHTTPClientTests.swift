import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Platform
import PlatformTesting
import Testing

/// libcurl against a real HTTP server on loopback.
@Suite struct CurlHTTPClientTests {
    private func server() -> some ApplicationProtocol {
        let router = Router()
        router.on("echo", method: .get) { request, _ in
            "GET \(request.headers[HTTPField.Name("X-Token")!] ?? "-")"
        }
        for method in [HTTPRequest.Method.post, .put, .delete] {
            router.on("echo", method: method) { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                return Response(
                    status: method == .delete ? .accepted : .created,
                    headers: [.contentType: "text/plain", HTTPField.Name("X-Method")!: method.rawValue],
                    body: .init(byteBuffer: body))
            }
        }
        router.get("missing") { _, _ -> Response in Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: #"{"errors":[]}"#))) }
        router.get("big") { _, _ in String(repeating: "x", count: 4096) }
        router.get("slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(1))
            return "late"
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test func requestsCarryTheirMethodHeadersAndBody() async throws {
        let client = CurlHTTPClient()
        try await server().test(.live) { test in
            let base = "http://127.0.0.1:\(try #require(test.port))"
            let get = try await client.execute(TransferRequest(method: "GET", url: base + "/echo", headers: [("X-Token", "t-1")]))
            #expect(get.status == 200)
            #expect(String(decoding: get.body, as: UTF8.self) == "GET t-1")
            for method in ["POST", "PUT", "DELETE"] {
                let payload = Array(#"{"method":"\#(method)"}"#.utf8)
                let response = try await client.execute(TransferRequest(method: method, url: base + "/echo", body: payload))
                #expect(response.status == (method == "DELETE" ? 202 : 201))
                #expect(response.body == payload)
                #expect(response.header("x-method") == method)
            }
            let empty = try await client.execute(TransferRequest(method: "POST", url: base + "/echo", body: []))
            #expect(empty.status == 201)
            #expect(empty.body.isEmpty)
            // Any status is an answer, not an error.
            let missing = try await client.execute(TransferRequest(method: "GET", url: base + "/missing"))
            #expect(missing.status == 404)
            #expect(String(decoding: missing.body, as: UTF8.self) == #"{"errors":[]}"#)
        }
    }

    @Test func concurrentTransfersEachGetTheirOwnAnswer() async throws {
        let client = CurlHTTPClient()
        try await server().test(.live) { test in
            let url = "http://127.0.0.1:\(try #require(test.port))/echo"
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        let response = try await client.execute(TransferRequest(method: "PUT", url: url, body: Array("\(index)".utf8)))
                        return Int(String(decoding: response.body, as: UTF8.self)) ?? -1
                    }
                }
                var seen = Set<Int>()
                for try await index in group { seen.insert(index) }
                #expect(seen == Set(0..<40))
            }
        }
    }

    @Test func limitsAndUnreachableHostsAreErrors() async throws {
        var options = CurlHTTPClient.Options()
        options.maxResponseBytes = 1000
        options.timeout = .milliseconds(300)
        let client = CurlHTTPClient(options: options)
        try await server().test(.live) { test in
            let base = "http://127.0.0.1:\(try #require(test.port))"
            await #expect { try await client.execute(TransferRequest(method: "GET", url: base + "/big")) } throws: { error in
                (error as? TransferError)?.message.contains("larger than 1000 bytes") == true
            }
            await #expect { try await client.execute(TransferRequest(method: "GET", url: base + "/slow")) } throws: { error in
                (error as? TransferError)?.isTimeout == true
            }
        }
        let closed = try TestEnvironment.freePort()
        await #expect(throws: TransferError.self) { try await client.execute(TransferRequest(method: "GET", url: "http://127.0.0.1:\(closed)/")) }
        await #expect(throws: TransferError.self) { try await client.execute(TransferRequest(method: "GET", url: "file:///etc/passwd")) }
    }
}
