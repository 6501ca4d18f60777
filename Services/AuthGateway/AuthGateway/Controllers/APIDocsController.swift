import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import Platform
import SharedModels

/// The whole public API in one document: the gateway's own routes merged with the documents the services
/// serve at their `/openapi.json`. Fetched on demand and kept for a while; a service that does not answer is
/// left out (and named under `x-unavailable-services`) and asked again sooner.
actor OpenAPICatalog {
    private let own: OpenAPIDocument
    private let upstreams: [Upstream: String]
    private let httpClient: HTTPClient
    private let policy: AccessPolicy
    private let logger: Logger
    private var cached: (document: OpenAPIDocument, at: ContinuousClock.Instant, complete: Bool)?

    init(own: OpenAPIDocument, upstreams: [Upstream: String], httpClient: HTTPClient, policy: AccessPolicy, logger: Logger) {
        self.own = own
        self.upstreams = upstreams
        self.httpClient = httpClient
        self.policy = policy
        self.logger = logger
    }

    /// The merged document.
    func document() async -> OpenAPIDocument {
        if let cached {
            let age = ContinuousClock.now - cached.at
            if age < (cached.complete ? .seconds(300) : .seconds(10)) { return cached.document }
        }
        let fetched = await withTaskGroup(of: (Upstream, OpenAPIDocument?).self) { group in
            for upstream in Upstream.allCases {
                group.addTask { (upstream, await self.fetch(upstream)) }
            }
            var documents: [Upstream: OpenAPIDocument] = [:]
            for await (upstream, document) in group { documents[upstream] = document }
            return documents
        }
        var merged = own
        var missing: [JSONValue] = []
        for upstream in Upstream.allCases {
            guard let document = fetched[upstream] ?? nil else {
                missing.append(.string(upstream.rawValue))
                continue
            }
            let (result, conflicts) = merged.merging(document)
            merged = result
            if !conflicts.isEmpty {
                logger.warning("OpenAPI conflicts kept from the earlier document", metadata: [
                    "service": "\(upstream.rawValue)", "conflicts": "\(conflicts.joined(separator: ", "))",
                ])
            }
        }
        merged = GatewayAnswers.documenting(merged, policy: policy)
        if !missing.isEmpty { merged.root["x-unavailable-services"] = .array(missing) }
        cached = (merged, .now, missing.isEmpty)
        return merged
    }

    private nonisolated func fetch(_ upstream: Upstream) async -> OpenAPIDocument? {
        guard let base = upstreams[upstream] else { return nil }
        do {
            let response = try await httpClient.fetch(HTTPClientRequest(url: base + "/openapi.json"), timeout: .seconds(2), limit: 4 << 20)
            guard response.status == .ok else { return nil }
            return try OpenAPIDocument(json: Data(buffer: response.body))
        } catch {
            logger.warning("could not read a service's OpenAPI document", metadata: ["service": "\(upstream.rawValue)", "error": "\(error)"])
            return nil
        }
    }
}

/// `GET /openapi.json` and the offline reference page `GET /docs` (also `/redoc`).
struct APIDocsController: Sendable {
    let catalog: OpenAPICatalog

    func addRoutes(to router: Router<PlatformRequestContext>) {
        router.get("openapi.json") { _, _ in
            let document = await catalog.document()
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(data: try document.jsonData())))
        }
        for path in ["docs", "redoc"] {
            router.get(RouterPath(path)) { _, _ in
                let page = OpenAPIPage.render(await catalog.document())
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/html; charset=utf-8",
                              .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"],
                    body: .init(byteBuffer: ByteBuffer(string: page)))
            }
        }
    }
}
