import Foundation
import SharedModels

/// Reads typed fields out of a JSON object while remembering where it is, so every problem names its JSON
/// path. Problems are collected, not thrown: a client learns everything wrong with a body at once.
final class JSONReader {
    private(set) var problems: [SpecificationProblem] = []

    /// Records a problem at `path`.
    func problem(_ path: String, _ reason: String, code: ErrorCode = .validationError) {
        problems.append(SpecificationProblem(path: path, reason: reason, code: code))
    }

    /// The object at `path`; records a problem when it is something else.
    func object(_ value: JSONValue?, at path: String) -> [String: JSONValue]? {
        guard let value else { problem(path, "is required"); return nil }
        guard case .object(let object) = value else { problem(path, "must be a JSON object"); return nil }
        return object
    }

    /// The array at `path` (with at least `minimum` items); records a problem when it is something else.
    func array(_ value: JSONValue?, at path: String, minimum: Int = 0, maximum: Int = 100) -> [JSONValue]? {
        guard let value else { problem(path, "is required"); return nil }
        guard case .array(let array) = value else { problem(path, "must be a JSON array"); return nil }
        guard array.count >= minimum else { problem(path, "must have at least \(minimum) item\(minimum == 1 ? "" : "s")"); return nil }
        guard array.count <= maximum else { problem(path, "must have at most \(maximum) items"); return nil }
        return array
    }

    /// A string of 1 to `maximum` characters without control characters; `nil` (and no problem) when absent
    /// and not `required`.
    func string(_ value: JSONValue?, at path: String, required: Bool = true, maximum: Int = 200) -> String? {
        guard let value, value != .null else {
            if required { problem(path, "is required") }
            return nil
        }
        guard case .string(let text) = value else { problem(path, "must be a string"); return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { problem(path, "must not be empty"); return nil }
        guard text.count <= maximum else { problem(path, "must be at most \(maximum) characters"); return nil }
        guard !text.unicodeScalars.contains(where: { $0.value == 0 }) else { problem(path, "must not contain NUL"); return nil }
        return text
    }

    /// A positive integer that fits a JSON number exactly.
    func positiveInteger(_ value: JSONValue?, at path: String, required: Bool = true) -> Int64? {
        guard let value, value != .null else {
            if required { problem(path, "is required") }
            return nil
        }
        guard case .number(let number) = value, number.rounded() == number, number >= 1, number <= 9_007_199_254_740_991 else {
            problem(path, "must be a positive integer")
            return nil
        }
        return Int64(number)
    }

    /// A boolean, `fallback` when absent.
    func bool(_ value: JSONValue?, at path: String, default fallback: Bool) -> Bool {
        guard let value, value != .null else { return fallback }
        guard case .bool(let flag) = value else { problem(path, "must be true or false"); return fallback }
        return flag
    }

    /// One of `choices` (the raw values of `T`).
    func choice<T: RawRepresentable & CaseIterable>(_ value: JSONValue?, at path: String, as type: T.Type) -> T? where T.RawValue == String {
        guard let text = string(value, at: path) else { return nil }
        guard let choice = T(rawValue: text) else {
            problem(path, "must be one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return choice
    }

    /// Records a problem for every key of `object` that is not in `known`.
    func rejectUnknownKeys(_ object: [String: JSONValue], known: Set<String>, at path: String) {
        for key in object.keys.sorted() where !known.contains(key) {
            problem(Self.join(path, key), "is not a known field (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// `path.key`, or `key` at the root.
    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}
