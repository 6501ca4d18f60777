import Foundation
import SharedModels
import Yams

/// An OpenAPI 3.1 document held as plain JSON values: read from a service's `OpenAPI/openapi.yaml`, served as
/// JSON, and merged with the documents of other services by the gateway.
public struct OpenAPIDocument: Sendable, Equatable {
    /// The top-level object.
    public var root: [String: JSONValue]

    /// Wraps a top-level object.
    public init(root: [String: JSONValue]) {
        self.root = root
    }

    /// Parses YAML (or JSON, which is YAML).
    public init(yaml: String) throws {
        guard case .object(let root) = try YAMLDecoder().decode(JSONValue.self, from: yaml) else {
            throw OpenAPIError(reason: "the document is not an object")
        }
        self.root = root
    }

    /// Parses the JSON form.
    public init(json: Data) throws {
        guard case .object(let root) = try JSONDecoder().decode(JSONValue.self, from: json) else {
            throw OpenAPIError(reason: "the document is not an object")
        }
        self.root = root
    }

    /// Loads `openapi.yaml` from a service's `OpenAPI` resource directory.
    public static func load(directory: URL?) throws -> OpenAPIDocument {
        guard let file = directory?.appendingPathComponent("openapi.yaml") else {
            throw OpenAPIError(reason: "the OpenAPI resource directory is missing")
        }
        return try OpenAPIDocument(yaml: String(contentsOf: file, encoding: .utf8))
    }

    /// The JSON form.
    public func jsonData() throws -> Data {
        try JSONEncoder.platform.encode(JSONValue.object(root))
    }

    /// The operations under `paths`, as (path, method, operation object), in path and method order.
    public var operations: [(path: String, method: String, operation: [String: JSONValue])] {
        guard case .object(let paths)? = root["paths"] else { return [] }
        return paths.keys.sorted().flatMap { path -> [(path: String, method: String, operation: [String: JSONValue])] in
            guard case .object(let item)? = paths[path] else { return [] }
            return Self.methods.compactMap { method in
                guard case .object(let operation)? = item[method] else { return nil }
                return (path, method, operation)
            }
        }
    }

    /// Every `$ref` in the document that does not point at something in it.
    public var unresolvedReferences: [String] {
        var references: Set<String> = []
        func collect(_ value: JSONValue) {
            switch value {
            case .object(let object):
                if case .string(let reference)? = object["$ref"] { references.insert(reference) }
                object.values.forEach(collect)
            case .array(let array):
                array.forEach(collect)
            default:
                break
            }
        }
        collect(.object(root))
        return references.filter { resolve($0) == nil }.sorted()
    }

    /// The value a local reference (`#/components/schemas/User`) points at.
    public func resolve(_ reference: String) -> JSONValue? {
        guard reference.hasPrefix("#/") else { return nil }
        var current = JSONValue.object(root)
        for part in reference.dropFirst(2).split(separator: "/") {
            let key = part.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            guard case .object(let object) = current, let next = object[key] else { return nil }
            current = next
        }
        return current
    }

    /// This document with the paths, components and tags of `other` added. What both define is kept from
    /// this document and reported as a conflict (`paths./x`, `components.schemas.User`, ...).
    public func merging(_ other: OpenAPIDocument) -> (document: OpenAPIDocument, conflicts: [String]) {
        var merged = root
        var conflicts: [String] = []
        func mergeObject(_ key: String, into target: inout [String: JSONValue], from source: [String: JSONValue], path: String) {
            guard case .object(let incoming)? = source[key] else { return }
            var existing: [String: JSONValue] = [:]
            if case .object(let current)? = target[key] { existing = current }
            for (name, value) in incoming {
                if let present = existing[name] {
                    if present != value { conflicts.append("\(path)\(name)") }
                } else {
                    existing[name] = value
                }
            }
            target[key] = .object(existing)
        }
        mergeObject("paths", into: &merged, from: other.root, path: "paths.")
        if case .object(let incoming)? = other.root["components"] {
            var components: [String: JSONValue] = [:]
            if case .object(let current)? = merged["components"] { components = current }
            for section in incoming.keys.sorted() {
                mergeObject(section, into: &components, from: incoming, path: "components.\(section).")
            }
            merged["components"] = .object(components)
        }
        if case .array(let incoming)? = other.root["tags"] {
            var tags: [JSONValue] = []
            if case .array(let current)? = merged["tags"] { tags = current }
            let names = Set(tags.compactMap(Self.tagName))
            tags += incoming.filter { Self.tagName($0).map { !names.contains($0) } ?? false }
            merged["tags"] = .array(tags)
        }
        return (OpenAPIDocument(root: merged), conflicts)
    }

    /// This document with the answer every platform service gives through the shared request helpers
    /// (``Request/decodeJSON(as:context:)``, the query-parameter readers): 422 `VALIDATION_ERROR` on each operation
    /// that takes parameters or a body, where the document does not list it already.
    public func documentingPlatformAnswers() -> OpenAPIDocument {
        guard case .object(var paths)? = root["paths"] else { return self }
        let validation: JSONValue = resolve("#/components/responses/ValidationError") != nil
            ? .object(["$ref": .string("#/components/responses/ValidationError")])
            : .object([
                "description": .string("A field or parameter failed validation (VALIDATION_ERROR; details.field names it)"),
                "content": .object(["application/json": .object(["schema": .object(["$ref": .string("#/components/schemas/ErrorEnvelope")])])]),
            ])
        for (path, item) in paths {
            guard case .object(var operations) = item else { continue }
            let pathTakesParameters = operations["parameters"] != nil || path.contains("{")
            for method in Self.methods {
                guard case .object(var operation)? = operations[method],
                      pathTakesParameters || operation["parameters"] != nil || operation["requestBody"] != nil,
                      case .object(var responses)? = operation["responses"], responses["422"] == nil else { continue }
                responses["422"] = validation
                operation["responses"] = .object(responses)
                operations[method] = .object(operation)
            }
            paths[path] = .object(operations)
        }
        var document = self
        document.root["paths"] = .object(paths)
        return document
    }

    /// The methods (upper-case) that the path templates matching a concrete path declare, `{name}` standing for
    /// one segment; `nil` when no template matches.
    public func declaredMethods(forPath path: String) -> [String]? {
        guard case .object(let paths)? = root["paths"] else { return nil }
        let segments = path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
        var declared: Set<String>?
        for (template, item) in paths {
            let parts = template.split(separator: "/")
            guard parts.count == segments.count,
                  zip(parts, segments).allSatisfy({ $0.first == "{" && $0.last == "}" || $0 == $1 }),
                  case .object(let operations) = item else { continue }
            declared = (declared ?? []).union(Self.methods.filter { operations[$0] != nil })
        }
        return declared.map { found in Self.methods.filter(found.contains).map { $0.uppercased() } }
    }

    /// The HTTP methods an OpenAPI path item can describe, lower-case.
    public static let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    static func tagName(_ tag: JSONValue) -> String? {
        guard case .object(let object) = tag, case .string(let name)? = object["name"] else { return nil }
        return name
    }
}

/// A document that could not be read.
public struct OpenAPIError: Error, CustomStringConvertible, Sendable {
    /// What was wrong.
    public var reason: String
    public var description: String { "OpenAPI document: \(reason)" }
}
