import SharedModels

/// A self-contained HTML reference of an OpenAPI document: no scripts, no fonts or styles from elsewhere, so
/// it works without internet access and under a strict Content-Security-Policy (inline styles only).
public enum OpenAPIPage {
    /// The page.
    public static func render(_ document: OpenAPIDocument) -> String {
        let info = document.root["info"]?.objectValue ?? [:]
        let title = info["title"]?.stringValue ?? "API"
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title><style>\(style)</style></head><body>
            <header><h1>\(escape(title))</h1><p class="version">version \(escape(info["version"]?.stringValue ?? ""))
             · OpenAPI \(escape(document.root["openapi"]?.stringValue ?? "")) · <a href="/openapi.json">openapi.json</a></p>
            """
        if let description = info["description"]?.stringValue { html += "<p>\(escape(description))</p>" }
        html += "</header><nav><h2>Contents</h2><ul>"

        let groups = operationsByTag(document)
        for (tag, _) in groups { html += "<li><a href=\"#tag-\(anchor(tag))\">\(escape(tag))</a></li>" }
        html += "<li><a href=\"#schemas\">Schemas</a></li></ul></nav><main>"

        let tagDescriptions = Dictionary(
            (document.root["tags"]?.arrayValue ?? []).compactMap { tag -> (String, String)? in
                guard let name = OpenAPIDocument.tagName(tag) else { return nil }
                return (name, tag.objectValue?["description"]?.stringValue ?? "")
            }, uniquingKeysWith: { first, _ in first })
        for (tag, operations) in groups {
            html += "<section id=\"tag-\(anchor(tag))\"><h2>\(escape(tag))</h2>"
            if let description = tagDescriptions[tag], !description.isEmpty { html += "<p>\(escape(description))</p>" }
            if operations.isEmpty { html += "<p class=\"empty\">No public routes yet.</p>" }
            for entry in operations { html += render(entry.path, entry.method, entry.operation, document: document) }
            html += "</section>"
        }

        html += "<section id=\"schemas\"><h2>Schemas</h2>"
        let schemas = document.root["components"]?.objectValue?["schemas"]?.objectValue ?? [:]
        for name in schemas.keys.sorted() {
            html += "<article class=\"schema\" id=\"schema-\(anchor(name))\"><h3>\(escape(name))</h3>\(renderSchema(schemas[name]!, document: document))</article>"
        }
        html += "</section></main></body></html>\n"
        return html
    }

    /// Tags in document order (then any others alphabetically), each with its operations; untagged ones last.
    static func operationsByTag(_ document: OpenAPIDocument) -> [(String, [(path: String, method: String, operation: [String: JSONValue])])] {
        var order = (document.root["tags"]?.arrayValue ?? []).compactMap(OpenAPIDocument.tagName)
        var groups: [String: [(path: String, method: String, operation: [String: JSONValue])]] = [:]
        for tag in order { groups[tag] = [] }
        for entry in document.operations {
            let tag = entry.operation["tags"]?.arrayValue?.first?.stringValue ?? "other"
            if groups[tag] == nil {
                groups[tag] = []
                order.append(tag)
            }
            groups[tag]!.append(entry)
        }
        return order.map { ($0, groups[$0]!) }
    }

    private static func render(_ path: String, _ method: String, _ operation: [String: JSONValue], document: OpenAPIDocument) -> String {
        let open = operation["security"]?.arrayValue?.isEmpty == true
        var html = """
            <article class="operation"><h3><span class="method \(method)">\(method.uppercased())</span> <code>\(escape(path))</code>\
            \(open ? " <span class=\"open\">no token</span>" : "")</h3>
            """
        if let summary = operation["summary"]?.stringValue { html += "<p class=\"summary\">\(escape(summary))</p>" }
        if let description = operation["description"]?.stringValue { html += "<p>\(escape(description))</p>" }
        var parameters = operation["parameters"]?.arrayValue ?? []
        let pathItem = document.root["paths"]?.objectValue?[path]?.objectValue
        parameters = (pathItem?["parameters"]?.arrayValue ?? []) + parameters
        if !parameters.isEmpty {
            html += "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th></tr>"
            for parameter in parameters.compactMap(\.objectValue) {
                html += "<tr><td><code>\(escape(parameter["name"]?.stringValue ?? ""))</code></td><td>\(escape(parameter["in"]?.stringValue ?? ""))</td>"
                html += "<td>\(parameter["schema"].map { typeName($0) } ?? "")</td><td>\(parameter["required"] == .bool(true) ? "yes" : "")</td></tr>"
            }
            html += "</table>"
        }
        if let content = operation["requestBody"]?.objectValue?["content"]?.objectValue {
            html += "<h4>Body</h4><ul>"
            for (type, media) in content.sorted(by: { $0.key < $1.key }) {
                html += "<li><code>\(escape(type))</code>: \(media.objectValue?["schema"].map { typeName($0) } ?? "")</li>"
            }
            html += "</ul>"
        }
        if let responses = operation["responses"]?.objectValue {
            html += "<h4>Responses</h4><table>"
            for code in responses.keys.sorted() {
                var response = responses[code]!
                if let reference = response.objectValue?["$ref"]?.stringValue, let resolved = document.resolve(reference) { response = resolved }
                let schema = response.objectValue?["content"]?.objectValue?.values.first?.objectValue?["schema"]
                html += "<tr><td class=\"status\">\(escape(code))</td><td>\(escape(response.objectValue?["description"]?.stringValue ?? ""))"
                html += "\(schema.map { " — " + typeName($0) } ?? "")</td></tr>"
            }
            html += "</table>"
        }
        return html + "</article>"
    }

    private static func renderSchema(_ schema: JSONValue, document: OpenAPIDocument) -> String {
        guard let object = schema.objectValue else { return "" }
        var html = ""
        if let description = object["description"]?.stringValue { html += "<p>\(escape(description))</p>" }
        if let values = object["enum"]?.arrayValue {
            html += "<p>One of: " + values.compactMap(\.stringValue).map { "<code>\(escape($0))</code>" }.joined(separator: ", ") + "</p>"
        }
        if let parts = object["allOf"]?.arrayValue {
            html += "<p>All of: " + parts.map { typeName($0) }.joined(separator: ", ") + "</p>"
            for part in parts where part.objectValue?["properties"] != nil { html += renderSchema(part, document: document) }
        }
        if let properties = object["properties"]?.objectValue {
            let required = Set(object["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            html += "<table><tr><th>field</th><th>type</th><th>required</th><th>notes</th></tr>"
            for name in properties.keys.sorted() {
                let property = properties[name]!
                html += "<tr><td><code>\(escape(name))</code></td><td>\(typeName(property))</td><td>\(required.contains(name) ? "yes" : "")</td>"
                html += "<td>\(escape(property.objectValue?["description"]?.stringValue ?? ""))</td></tr>"
            }
            html += "</table>"
        }
        return html
    }

    /// A short, linked name for a schema: `User`, `array of User`, `string (date-time)`.
    static func typeName(_ schema: JSONValue) -> String {
        guard let object = schema.objectValue else { return "" }
        if let reference = object["$ref"]?.stringValue {
            let name = String(reference.split(separator: "/").last ?? "")
            return "<a href=\"#schema-\(anchor(name))\">\(escape(name))</a>"
        }
        if object["type"]?.stringValue == "array", let items = object["items"] { return "array of " + typeName(items) }
        let type = object["type"]?.stringValue ?? object["type"]?.arrayValue?.compactMap(\.stringValue).joined(separator: " | ") ?? "object"
        return escape(type) + (object["format"]?.stringValue.map { " (\(escape($0)))" } ?? "")
    }

    /// Text for HTML content and attribute values.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func anchor(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    static let style = """
        body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}header,main,nav{max-width:980px;margin:0 auto;padding:0 20px}\
        h1{margin:24px 0 4px}.version{color:#667}nav ul{columns:3}section{margin:28px 0}\
        article{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:8px 16px;margin:12px 0}\
        h3{font-size:16px;margin:8px 0}h4{margin:10px 0 4px;font-size:14px}code{font:13px ui-monospace,monospace}\
        table{border-collapse:collapse;width:100%;font-size:14px}td,th{border-bottom:1px solid #eef0f3;padding:3px 8px;text-align:left;vertical-align:top}\
        .method{display:inline-block;min-width:58px;text-align:center;border-radius:4px;color:#fff;font-size:12px;padding:2px 6px}\
        .get{background:#2f7bd9}.post{background:#2a9d5c}.put{background:#b7791f}.patch{background:#8a5cd1}.delete{background:#c53030}\
        .head,.options,.trace{background:#667}.open{font-size:12px;color:#2a9d5c}.summary{font-weight:600}.status{width:60px}.empty{color:#889}
        """
}

extension JSONValue {
    var objectValue: [String: JSONValue]? {
        if case .object(let object) = self { return object }
        return nil
    }

    var arrayValue: [JSONValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }
}
