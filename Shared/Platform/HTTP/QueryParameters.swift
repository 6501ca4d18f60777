import Foundation
import Hummingbird

extension Request {
    /// An integer query parameter, `value` when absent; 422 naming it when it is not an integer in `range`.
    public func integerQuery(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text = uri.queryParameters.get(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.validation(field: name, reason: "must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// A `true`/`false` query parameter, `nil` when absent; 422 naming it otherwise.
    public func booleanQuery(_ name: String) throws -> Bool? {
        guard let text = uri.queryParameters.get(name) else { return nil }
        guard let value = Bool(text.lowercased()) else { throw APIError.validation(field: name, reason: "must be true or false") }
        return value
    }

    /// `limit` (1 to `maxLimit`, default `defaultLimit`) and `offset` (from 0) of a list request.
    public func pagination(defaultLimit: Int = 50, maxLimit: Int = 500) throws -> (limit: Int, offset: Int) {
        (try integerQuery("limit", default: defaultLimit, in: 1...maxLimit), try integerQuery("offset", default: 0, in: 0...Int(Int32.max)))
    }
}

/// One page of a list: `{"items", "total", "limit", "offset"}`, the contract's list shape.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
    public var items: [Item]
    /// Items matching the filters, over all pages.
    public var total: Int
    public var limit: Int
    public var offset: Int

    public init(items: [Item], total: Int, limit: Int, offset: Int) {
        self.items = items
        self.total = total
        self.limit = limit
        self.offset = offset
    }
}

extension Parameters {
    /// A path value as the client meant it: percent-decoded (`Z%C3%A4hler` is `Zähler`); empty when absent.
    public func decoded(_ name: String) -> String {
        guard let raw = get(name) else { return "" }
        return raw.removingPercentEncoding ?? raw
    }
}
