/// The application error codes of the API contract (`002-platform-api.md`, "Коды ошибок").
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    case authFailed = "AUTH_FAILED"
    case invalidToken = "INVALID_TOKEN"
    case tokenExpired = "TOKEN_EXPIRED"
    case permissionDenied = "PERMISSION_DENIED"
    case validationError = "VALIDATION_ERROR"
    case badRequest = "BAD_REQUEST"
    case resourceNotFound = "RESOURCE_NOT_FOUND"
    case methodNotAllowed = "METHOD_NOT_ALLOWED"
    case duplicateResource = "DUPLICATE_RESOURCE"
    case payloadTooLarge = "PAYLOAD_TOO_LARGE"
    case rateLimitExceeded = "RATE_LIMIT_EXCEEDED"
    /// Too many failed logins: the account is locked for a while (429 with `Retry-After`).
    case accountLocked = "ACCOUNT_LOCKED"
    case connectorError = "CONNECTOR_ERROR"
    case pipelineExecutionError = "PIPELINE_EXECUTION_ERROR"
    /// A pipeline names a transformation type the platform does not run (`python`).
    case unsupportedTransformation = "UNSUPPORTED_TRANSFORMATION"
    case llmGenerationError = "LLM_GENERATION_ERROR"
    case databaseError = "DATABASE_ERROR"
    case serviceUnavailable = "SERVICE_UNAVAILABLE"
    case gatewayTimeout = "GATEWAY_TIMEOUT"
    case gone = "GONE"
    case internalError = "INTERNAL_ERROR"
}
