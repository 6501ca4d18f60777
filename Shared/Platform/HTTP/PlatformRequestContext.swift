import Hummingbird
import Logging

/// A request context that carries the request id; the platform's middlewares work with any such context.
public protocol RequestIDContext: RequestContext {
    /// The id of this request, echoed in `X-Request-Id` and in error envelopes.
    var requestID: String { get set }
}

/// The request context of the platform's services.
public struct PlatformRequestContext: AuthenticatedRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String
    public var user: AuthenticatedUser?
    public var callingService: String?
    /// The peer's IP address (`nil` in router tests).
    public var clientAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.requestID = ""
        self.user = nil
        self.callingService = nil
        self.clientAddress = source.channel.remoteAddress?.ipAddress
    }

    /// JSON bodies over 1 MB are refused with 413 (the contract's limit for JSON requests).
    public var maxUploadSize: Int { 1024 * 1024 }
}
