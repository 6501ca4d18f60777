internal import CCurl
import Foundation
import NIOPosix
import Synchronization

/// One HTTP request to an external system (HashiCorp Vault, S3, ClickHouse, a webhook), made with libcurl.
public struct TransferRequest: Sendable {
    /// `GET`, `POST`, `PUT`, `DELETE`, `LIST`, ... (sent as is).
    public var method: String
    /// Absolute `http://` or `https://` URL; other schemes are refused by libcurl.
    public var url: String
    /// Request headers, in order.
    public var headers: [(name: String, value: String)]
    /// The body, or `nil` for none.
    public var body: [UInt8]?

    /// Creates a request.
    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// The answer to a ``TransferRequest``.
public struct TransferResponse: Sendable {
    /// HTTP status code.
    public var status: Int
    /// Response headers of the final response (not of an interim `100 Continue`), in order.
    public var headers: [(name: String, value: String)]
    /// The body.
    public var body: [UInt8]

    /// The first header with this name, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// A request that got no HTTP answer: the host could not be resolved or reached, TLS failed, it timed out, or the
/// answer was larger than allowed. The message is libcurl's and names no header or body.
public struct TransferError: Error, Sendable, CustomStringConvertible {
    /// libcurl's `CURLcode`.
    public var code: Int
    /// What went wrong.
    public var message: String
    /// True when it was the time limit.
    public var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }
    public var description: String { "transfer failed (curl \(code)): \(message)" }
}

/// An HTTP client over libcurl's easy interface, for external systems whose protocols libcurl knows and
/// AsyncHTTPClient does not need to (TLS with a custom CA file, and later sftp/ftp/smb and SigV4).
///
/// Each transfer blocks a thread of `threadPool`. Easy handles are kept between transfers, so connections (and
/// TLS sessions) to the same host are reused.
public final class CurlHTTPClient: Sendable {
    /// Limits and TLS settings.
    public struct Options: Sendable {
        /// Time allowed for the whole transfer.
        public var timeout: Duration = .seconds(30)
        /// Time allowed to connect (TCP and TLS).
        public var connectTimeout: Duration = .seconds(5)
        /// Largest response body accepted; a larger one fails the transfer.
        public var maxResponseBytes: Int = 16 << 20
        /// A PEM file of CA certificates to trust instead of the system's.
        public var caFile: String?

        /// Default options.
        public init() {}
    }

    private let threadPool: NIOThreadPool
    private let options: Options
    private let idle = Mutex<[EasyHandle]>([])

    /// A client running its transfers on `threadPool`.
    public init(threadPool: NIOThreadPool = .singleton, options: Options = Options()) {
        CurlLibrary.initializeOnce()
        self.threadPool = threadPool
        self.options = options
    }

    /// Performs the request; any HTTP status is a response, only a failure to get one throws ``TransferError``.
    public func execute(_ request: TransferRequest) async throws -> TransferResponse {
        let handle = idle.withLock { $0.popLast() } ?? EasyHandle()
        let options = self.options
        let response = try await threadPool.runIfActive { try handle.perform(request, options: options) }
        idle.withLock { if $0.count < 16 { $0.append(handle) } }
        return response
    }
}

/// `curl_global_init` must run once before any other libcurl call, and not concurrently with one.
private enum CurlLibrary {
    static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    static func initializeOnce() {
        precondition(initialized, "curl_global_init failed")
    }
}

/// One easy handle, used by one transfer at a time (it is taken out of the idle list while in use).
private final class EasyHandle: @unchecked Sendable {
    private let curl: UnsafeMutableRawPointer
    /// libcurl keeps the error buffer's address until the handle is cleaned up, so it lives as long as the handle.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    init() {
        guard let curl = curl_easy_init() else { fatalError("curl_easy_init failed: out of memory") }
        self.curl = curl
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(curl)
        errorBuffer.deallocate()
    }

    func perform(_ request: TransferRequest, options: CurlHTTPClient.Options) throws -> TransferResponse {
        // Reset options, keep the connection cache.
        curl_easy_reset(curl)
        let collector = ResponseCollector(limit: options.maxResponseBytes)
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        if request.body != nil, !request.headers.contains(where: { $0.name.caseInsensitiveCompare("Expect") == .orderedSame }) {
            // No `Expect: 100-continue` round trip before small bodies.
            headerList = curl_slist_append(headerList, "Expect:")
        }

        let code: CURLcode = {
            var result = CURLE_OK
            func set(_ step: CURLcode) { if result == CURLE_OK { result = step } }
            set(platform_curl_setopt_string(curl, CURLOPT_URL, request.url))
            set(platform_curl_setopt_string(curl, CURLOPT_PROTOCOLS_STR, "http,https"))
            set(platform_curl_setopt_long(curl, CURLOPT_NOSIGNAL, 1))
            set(platform_curl_setopt_long(curl, CURLOPT_FOLLOWLOCATION, 0))
            set(platform_curl_setopt_long(curl, CURLOPT_TIMEOUT_MS, Int(options.timeout.wholeMilliseconds)))
            set(platform_curl_setopt_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Int(options.connectTimeout.wholeMilliseconds)))
            set(platform_curl_setopt_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer))
            if let caFile = options.caFile { set(platform_curl_setopt_string(curl, CURLOPT_CAINFO, caFile)) }
            set(platform_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, headerList))
            set(platform_curl_setopt_write_callback(curl, collectBody))
            set(platform_curl_setopt_pointer(curl, CURLOPT_WRITEDATA, box.toOpaque()))
            set(platform_curl_setopt_header_callback(curl, collectHeader))
            set(platform_curl_setopt_pointer(curl, CURLOPT_HEADERDATA, box.toOpaque()))
            switch request.method {
            case "GET" where request.body == nil:
                set(platform_curl_setopt_long(curl, CURLOPT_HTTPGET, 1))
            case "HEAD":
                set(platform_curl_setopt_long(curl, CURLOPT_NOBODY, 1))
            default:
                set(platform_curl_setopt_string(curl, CURLOPT_CUSTOMREQUEST, request.method))
            }
            guard result == CURLE_OK else { return result }
            // libcurl reads the body from our buffer while it performs (no copy of a body of many megabytes), so the
            // buffer is pinned for the whole transfer.
            let performed = (request.body ?? []).withUnsafeBytes { bytes -> CURLcode in
                if request.body != nil {
                    set(platform_curl_setopt_long(curl, CURLOPT_POSTFIELDSIZE, bytes.count))
                    set(bytes.baseAddress.map { platform_curl_setopt_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: $0)) }
                        ?? platform_curl_setopt_string(curl, CURLOPT_COPYPOSTFIELDS, ""))
                    guard result == CURLE_OK else { return result }
                }
                let performed = curl_easy_perform(curl)
                // The body is ours only until this returns: the idle handle must not keep its address.
                _ = platform_curl_setopt_pointer(curl, CURLOPT_POSTFIELDS, nil)
                return performed
            }
            // The header list is freed on return; the idle handle must not keep its address.
            _ = platform_curl_setopt_slist(curl, CURLOPT_HTTPHEADER, nil)
            return performed
        }()
        guard code == CURLE_OK else {
            if collector.overflowed {
                throw TransferError(code: Int(code.rawValue), message: "the response is larger than \(options.maxResponseBytes) bytes")
            }
            let detail = String(cString: errorBuffer)
            throw TransferError(code: Int(code.rawValue), message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        }
        var status = 0
        _ = platform_curl_getinfo_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return TransferResponse(status: status, headers: collector.headers, body: collector.body)
    }
}

/// Where the C callbacks put what arrives; reached through the `void *` user data.
private final class ResponseCollector {
    let limit: Int
    var body: [UInt8] = []
    var headers: [(name: String, value: String)] = []
    var overflowed = false

    init(limit: Int) {
        self.limit = limit
    }
}

private let collectBody: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, user in
    let collector = Unmanaged<ResponseCollector>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    guard collector.body.count + length <= collector.limit else {
        collector.overflowed = true
        return 0  // Anything but `length` makes libcurl stop with CURLE_WRITE_ERROR.
    }
    if let data { collector.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length)) }
    return length
}

private let collectHeader: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, user in
    let collector = Unmanaged<ResponseCollector>.fromOpaque(user!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new status line: an interim response's headers do not belong to the final one.
        collector.headers.removeAll()
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces)
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        collector.headers.append((name, value))
    }
    return length
}
