/// The error body every service returns: `{"error": {"code", "message", "details", "request_id"}}`.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    /// The error itself.
    public var error: Body

    /// Creates an envelope around one error.
    public init(error: Body) {
        self.error = error
    }

    /// The content of the envelope.
    public struct Body: Codable, Sendable, Equatable {
        /// A stable machine-readable code.
        public var code: ErrorCode
        /// A human-readable sentence; never contains secrets or internals.
        public var message: String
        /// Structured context such as the offending `field` and the `reason`.
        public var details: [String: JSONValue]?
        /// The id of the request, as in the `X-Request-Id` header.
        public var requestID: String?

        /// Creates an error body.
        public init(code: ErrorCode, message: String, details: [String: JSONValue]? = nil, requestID: String? = nil) {
            self.code = code
            self.message = message
            self.details = details
            self.requestID = requestID
        }

        enum CodingKeys: String, CodingKey {
            case code, message, details
            case requestID = "request_id"
        }
    }
}
