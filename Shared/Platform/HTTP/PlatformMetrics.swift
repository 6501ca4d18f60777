import Hummingbird
import Prometheus
import Synchronization

/// The Prometheus registry of one service instance, and the observers that feed it.
///
/// No global metrics system is involved, so every application (and every test) has its own registry.
public final class PlatformMetrics: Sendable {
    /// Where the metrics live.
    public let registry: PrometheusCollectorRegistry

    /// Creates an empty registry.
    public init() {
        self.registry = PrometheusCollectorRegistry()
    }

    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
    static var poolConnections: MetricNameDescriptor { descriptor("db_pool_connections", "Open pooled connections by state.") }
    static var poolWaiters: MetricNameDescriptor { descriptor("db_pool_waiters", "Tasks waiting for a pooled connection.") }
    static var poolTimeouts: MetricNameDescriptor { descriptor("db_pool_timeouts_total", "Acquires that gave up waiting.") }
    static var streamEntries: MetricNameDescriptor { descriptor("stream_entries_total", "Stream entries handled, by outcome.") }
    static var httpRequests: MetricNameDescriptor { descriptor("http_requests_total", "HTTP requests by route, method and status.") }
    static var httpDuration: MetricNameDescriptor { descriptor("http_request_duration_seconds", "HTTP request latency by route and method.") }

    /// The registry in Prometheus text format.
    struct HTTPKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    struct HTTPInstruments {
        var requests: Counter
        var duration: DurationHistogram
    }

    static var httpBuckets: [Duration] {
        [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
         .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]
    }

    /// The instruments of each (route, method, status), looked up once instead of in the registry per request.
    private let httpInstrumentCache = Mutex<[HTTPKey: HTTPInstruments]>([:])

    func httpInstruments(route: String, method: String, status: Int) -> HTTPInstruments {
        httpInstrumentCache.withLock { cache in
            let key = HTTPKey(route: route, method: method, status: status)
            if let found = cache[key] { return found }
            let made = HTTPInstruments(
                requests: registry.makeCounter(
                    descriptor: Self.httpRequests, labels: [("route", route), ("method", method), ("status", String(status))]),
                duration: registry.makeDurationHistogram(
                    descriptor: Self.httpDuration, labels: [("route", route), ("method", method)], buckets: Self.httpBuckets))
            // Routes are templates, so the keys are few; the bound only guards against the unexpected.
            if cache.count < 10_000 { cache[key] = made }
            return made
        }
    }

    public func render() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }

    /// Gauges `db_pool_connections{pool,state}` and `db_pool_waiters{pool}`, and counter `db_pool_timeouts_total`.
    public func poolObserver(pool: String) -> ConnectionPoolObserver {
        let idle = registry.makeGauge(descriptor: Self.poolConnections, labels: [("pool", pool), ("state", "idle")])
        let inUse = registry.makeGauge(descriptor: Self.poolConnections, labels: [("pool", pool), ("state", "in_use")])
        let waiting = registry.makeGauge(descriptor: Self.poolWaiters, labels: [("pool", pool)])
        let timeouts = registry.makeCounter(descriptor: Self.poolTimeouts, labels: [("pool", pool)])
        return ConnectionPoolObserver(
            onChange: { idleCount, inUseCount, waitingCount in
                idle.set(Double(idleCount))
                inUse.set(Double(inUseCount))
                waiting.set(Double(waitingCount))
            },
            onTimeout: { timeouts.increment() }
        )
    }

    /// Counter `stream_entries_total{stream,outcome}` with outcomes processed, failed and dead_lettered.
    public func streamObserver(stream: String) -> StreamWorkerObserver {
        let counter = { (outcome: String) in
            self.registry.makeCounter(descriptor: Self.streamEntries, labels: [("stream", stream), ("outcome", outcome)])
        }
        let processed = counter("processed"), failed = counter("failed"), dead = counter("dead_lettered")
        return StreamWorkerObserver(
            onProcessed: { processed.increment(by: Int64($0)) },
            onFailed: { failed.increment(by: Int64($0)) },
            onDeadLettered: { dead.increment(by: Int64($0)) }
        )
    }
}

/// Counts requests (`http_requests_total{route,method,status}`) and times them
/// (`http_request_duration_seconds{route,method}`), by route pattern rather than raw path.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let metrics: PlatformMetrics

    /// Creates the middleware.
    public init(metrics: PlatformMetrics) {
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let status: Int
        do {
            let response = try await next(request, context)
            status = Int(response.status.code)
            record(request: request, context: context, status: status, elapsed: .now - start)
            return response
        } catch {
            record(request: request, context: context, status: 500, elapsed: .now - start)
            throw error
        }
    }

    private func record(request: Request, context: Context, status: Int, elapsed: Duration) {
        let instruments = metrics.httpInstruments(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status)
        instruments.requests.increment()
        instruments.duration.record(elapsed)
    }
}
