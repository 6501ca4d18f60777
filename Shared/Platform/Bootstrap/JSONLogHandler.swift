import Foundation
import Logging
import Synchronization

/// A swift-log handler that writes one JSON object per line to standard output.
///
/// Each line has `timestamp`, `level`, `service`, `message`, the logger's metadata (such as `request_id`)
/// and the source location for warnings and errors.
public struct JSONLogHandler: LogHandler {
    /// The service name written on every line.
    public let service: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let output: @Sendable (String) -> Void

    /// Creates a handler; `output` defaults to standard output.
    public init(label: String, service: String, level: Logger.Level,
                output: @escaping @Sendable (String) -> Void = JSONLogHandler.writeToStandardOutput) {
        self.service = service
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        log(level: event.level, message: event.message, metadata: event.metadata, source: event.source,
            file: event.file, function: event.function, line: event.line)
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
        file: String, function: String, line: UInt
    ) {
        var object: [String: Any] = [
            "timestamp": PostgresTimestamp.format(Date()),
            "level": level.rawValue,
            "service": service,
            "message": message.description,
        ]
        for (key, value) in metadata.merging(explicit ?? [:], uniquingKeysWith: { _, new in new }) {
            object[key] = Self.plain(value)
        }
        if level >= .warning {
            object["source"] = "\(file.split(separator: "/").last ?? ""):\(line)"
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        output(String(decoding: data, as: UTF8.self))
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(plain)
        case .dictionary(let values): values.mapValues(plain)
        }
    }

    /// Writes a line to standard output without interleaving lines of concurrent loggers.
    public static let writeToStandardOutput: @Sendable (String) -> Void = { line in
        standardOutputLock.withLock { _ in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    private static let standardOutputLock = Mutex(())
}

/// Sets up swift-log for a service process (once, from its `main`).
public enum PlatformLogging {
    /// Installs the JSON (or plain text) handler at the configured level and returns the service's logger.
    public static func bootstrap(_ settings: ServiceSettings) -> Logger {
        let level = settings.logLevel
        let service = settings.serviceName
        if settings.logFormat == "text" {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardOutput(label: label)
                handler.logLevel = level
                return handler
            }
        } else {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, service: service, level: level) }
        }
        var logger = Logger(label: service)
        logger[metadataKey: "instance"] = "\(settings.instanceID)"
        return logger
    }
}
