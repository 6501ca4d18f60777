import Foundation

/// A lexical token of PostgreSQL SQL.
struct SQLToken: Sendable, Equatable {
    /// The lexical class of a token.
    enum Kind: Sendable, Equatable {
        /// An unquoted word: a name or a keyword.
        case identifier
        /// A double-quoted name, `"like this"`.
        case quotedIdentifier
        /// A string constant: `'...'`, `E'...'`, `N'...'`, `B'...'` or `X'...'`.
        case string
        /// A numeric constant such as `42`, `1.5e10`, `.5` or `0x1F`.
        case number
        /// A run parameter `:name`, bound later by the engine.
        case parameter
        /// An operator such as `=`, `<>`, `||` or `@>`.
        case operator_
        /// One of `( ) [ ] , . ; :`, or the two-character `::` and `:=`.
        case punctuation
    }

    /// The token's class.
    var kind: Kind
    /// The token exactly as written.
    var text: String
    /// Where the token starts, in Unicode scalars from the start of the fragment.
    var offset: Int

    /// What the token names: an unquoted word folded to lowercase as PostgreSQL folds it, a quoted name without
    /// its quotes, a parameter without its colon; any other token as written.
    var normalized: String {
        switch kind {
        case .identifier:
            return text.asciiLowercased
        case .quotedIdentifier:
            var name = String.UnicodeScalarView()
            var skipNext = false
            for scalar in text.unicodeScalars.dropFirst().dropLast() {
                if skipNext { skipNext = false; continue }
                name.append(scalar)
                skipNext = scalar == "\""
            }
            return String(name)
        case .parameter:
            return String(text.dropFirst())
        default:
            return text
        }
    }
}

/// Why a fragment was refused, as a phrase fit for a client after the field's path: "contains a comment".
struct SQLFragmentError: Error, Sendable, Equatable {
    /// What is wrong, e.g. "calls pg_read_file, which reaches the server's files, the network or other databases".
    var reason: String
}

extension SQLFragmentError {
    /// A refusal saying `reason`.
    init(_ reason: String) {
        self.reason = reason
    }
}

/// The rules for SQL a user writes into a pipeline, checked on PostgreSQL's lexical grammar: what the engine pushes
/// down into the customer's database may read rows, never write, lock, reach out of the database or look at the server.
enum SQLFragment {
    /// The most a fragment may hold, in Unicode scalars.
    static let maximumLength = 10_000

    /// The fragment's tokens; throws on lexical errors: comments, unterminated quotes, dollar quoting, unicode
    /// escapes, positional parameters, control characters and characters SQL has no use for.
    static func tokenize(_ text: String) throws(SQLFragmentError) -> [SQLToken] {
        var lexer = Lexer(text)
        return try lexer.run()
    }

    /// Checks one scalar or boolean expression: a filter condition, a derive expression or an aggregation.
    static func validateExpression(_ text: String) throws(SQLFragmentError) {
        let tokens = try significantTokens(text)
        if tokens[0].isWord("select", "with", "values", "table") {
            throw SQLFragmentError("is a query, not an expression; use a sql transformation")
        }
        try checkCommon(tokens)
        var depth = 0
        for index in tokens.indices {
            let token = tokens[index]
            if token.isWord("select") {
                throw SQLFragmentError("contains a subquery; use a sql transformation")
            }
            if token.kind == .punctuation {
                switch token.text {
                case "(", "[": depth += 1
                case ")", "]": depth -= 1
                case "," where depth == 0: throw SQLFragmentError("contains more than one expression")
                default: break
                }
            } else if depth == 0, let clause = clauseKeyword(tokens, at: index) {
                throw SQLFragmentError("uses \(clause) outside parentheses, which ends the expression")
            }
        }
    }

    /// Checks a PostgreSQL type name for a cast: `numeric(12,2)`, `timestamp with time zone`, `text[]`, `public.money_type`.
    static func validateTypeName(_ text: String) throws(SQLFragmentError) {
        let tokens = try significantTokens(text)
        try checkCommon(tokens)
        let notAType = SQLFragmentError("is not a type name such as numeric(12,2), timestamp with time zone or text[]")
        func isTypeWord(_ index: Int) -> Bool { tokens.indices.contains(index) && tokens[index].isName }
        func isInteger(_ index: Int) -> Bool {
            tokens.indices.contains(index) && tokens[index].kind == .number && tokens[index].text.unicodeScalars.allSatisfy(\.isDigit)
        }
        guard isTypeWord(0) else { throw notAType }
        var index = 1
        if tokens.isPunctuation(at: index, "."), isTypeWord(index + 1) { index += 2 }
        // Several words: double precision, character varying, timestamp with time zone.
        while isTypeWord(index) { index += 1 }
        if tokens.isPunctuation(at: index, "(") {
            guard isInteger(index + 1) else { throw notAType }
            index += 2
            while tokens.isPunctuation(at: index, ","), isInteger(index + 1) { index += 2 }
            guard tokens.isPunctuation(at: index, ")") else { throw notAType }
            index += 1
            // timestamp(3) with time zone
            while isTypeWord(index) { index += 1 }
        }
        while tokens.isPunctuation(at: index, "[") {
            index += isInteger(index + 1) ? 2 : 1
            guard tokens.isPunctuation(at: index, "]") else { throw notAType }
            index += 1
        }
        guard index == tokens.count else { throw notAType }
    }

    /// Checks one SELECT (optionally WITH ... SELECT) that reads only the relation `input` and its own WITH queries.
    static func validateQuery(_ text: String) throws(SQLFragmentError) {
        try validateSelect(text, readsOnlyInput: true)
    }

    /// Checks a source's query: one SELECT (optionally WITH ... SELECT) over the source database's own tables,
    /// under the same rules as every fragment (no writes, locks, denied functions or system catalogs).
    static func validateSourceQuery(_ text: String) throws(SQLFragmentError) {
        try validateSelect(text, readsOnlyInput: false)
    }

    /// The names of the `:name` run parameters a fragment uses, each once, in order of first use; the engine binds them.
    static func parameters(in text: String) throws(SQLFragmentError) -> [String] {
        var names: [String] = []
        for token in try tokenize(text) where token.kind == .parameter && !names.contains(token.normalized) {
            names.append(token.normalized)
        }
        return names
    }

    // MARK: - Rules

    /// Words that write, control a session or transaction, or run another statement; refused when unquoted.
    private static let deniedKeywords: Set<String> = [
        "insert", "update", "delete", "merge", "truncate", "drop", "create", "alter", "grant", "revoke", "reassign",
        "copy", "vacuum", "analyze", "analyse", "cluster", "reindex", "lock", "comment", "security", "label",
        "begin", "commit", "rollback", "abort", "savepoint", "release", "start", "transaction",
        "prepare", "execute", "deallocate", "do", "call", "set", "reset", "show", "listen", "notify", "unlisten",
        "load", "discard", "checkpoint", "declare", "fetch", "move", "close", "refresh", "import",
        "into", "returning", "table",
    ]

    /// Functions no fragment may call, by group; a pattern ending in `*` matches every name it starts.
    private static let deniedFunctions: [(patterns: [String], why: String)] = [
        (["pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_*", "pg_file_*", "lo_*", "loread", "lowrite",
          "dblink*", "http", "http_*"],
         "reaches the server's files, the network or other databases"),
        (["query_to_xml*", "table_to_xml*", "cursor_to_xml*", "schema_to_xml*", "database_to_xml*",
          "ts_stat", "ts_rewrite", "crosstab*", "connectby"],
         "runs SQL given as text"),
        (["pg_sleep*", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
          "pg_advisory_*", "pg_try_advisory_*", "pg_notify", "pg_logical_*", "pg_create_*", "pg_drop_*",
          "pg_replication_*", "pg_switch_wal", "pg_backup_*", "pg_promote"],
         "controls the server or other sessions"),
        (["set_config", "current_setting"], "reads or changes server settings"),
        (["nextval", "setval", "currval", "lastval"], "uses a sequence"),
        (["brin_summarize_*", "brin_desummarize_range", "gin_clean_pending_list"], "maintains an index, which writes"),
    ]

    /// The `pg_` functions a fragment may call: they only describe a value.
    private static let allowedServerFunctions = ["pg_typeof", "pg_column_size", "pg_size_pretty", "pg_input_is_valid"]

    /// The only functions a FROM clause may call.
    fileprivate static let setReturningFunctions = ["generate_series", "unnest"]

    /// The fragment's tokens, refusing a fragment with none.
    private static func significantTokens(_ text: String) throws(SQLFragmentError) -> [SQLToken] {
        let tokens = try tokenize(text)
        guard !tokens.isEmpty else { throw SQLFragmentError("is empty") }
        return tokens
    }

    /// Refuses what no fragment may hold wherever it appears: statement separators, unbalanced brackets, words
    /// that write or lock, denied or schema-qualified function calls and the system catalogs.
    private static func checkCommon(_ tokens: [SQLToken]) throws(SQLFragmentError) {
        let unbalanced = SQLFragmentError("has unbalanced parentheses or brackets")
        var closers: [String] = []
        for index in tokens.indices {
            let token = tokens[index]
            switch token.kind {
            case .punctuation:
                switch token.text {
                case ";": throw SQLFragmentError("contains a statement separator")
                case "(": closers.append(")")
                case "[": closers.append("]")
                case ")", "]": guard closers.popLast() == token.text else { throw unbalanced }
                default: break
                }
            case .identifier, .quotedIdentifier:
                try checkName(at: index, in: tokens)
            default:
                break
            }
        }
        guard closers.isEmpty else { throw unbalanced }
    }

    /// Refuses the name at `index` if it writes, locks, calls a denied function or reaches the system catalogs.
    private static func checkName(at index: Int, in tokens: [SQLToken]) throws(SQLFragmentError) {
        let token = tokens[index]
        // Rules compare folded names; a quoted "PG_SLEEP" names no real function, so refusing it costs nothing.
        let name = token.normalized.asciiLowercased
        if token.kind == .identifier {
            if name == "for", locksRows(tokens, after: index) {
                throw SQLFragmentError("uses FOR UPDATE or FOR SHARE, which locks rows")
            }
            if deniedKeywords.contains(name) {
                throw SQLFragmentError("uses \(name.uppercased()), which is not allowed in a fragment; write \"\(name)\" if it is a column")
            }
        }
        if tokens.isPunctuation(at: index + 1, "."), tokens.indices.contains(index + 2), tokens[index + 2].isName,
           tokens.isPunctuation(at: index + 3, "(") {
            // Extensions live in their own schemas (aws_s3, net, cron), so a qualified call is refused whatever it is.
            let function = tokens[index + 2].normalized.asciiLowercased
            if let why = deniedCall(function) { throw SQLFragmentError("calls \(function), which \(why)") }
            throw SQLFragmentError("calls \(token.text).\(tokens[index + 2].text) by its schema; call functions by name alone")
        }
        if tokens.isPunctuation(at: index + 1, "(") {
            if let why = deniedCall(name) { throw SQLFragmentError("calls \(name), which \(why)") }
        } else if name.utf8.starts(with: "pg_".utf8) || name == "information_schema" {
            throw SQLFragmentError("uses \(token.text), which reads the system catalogs")
        }
    }

    /// Why a call of `name` is refused, or nil if it may be called.
    private static func deniedCall(_ name: String) -> String? {
        for group in deniedFunctions where group.patterns.contains(where: { name.matches(namePattern: $0) }) {
            return group.why
        }
        if name.utf8.starts(with: "pg_".utf8), !allowedServerFunctions.contains(where: { name.matches(namePattern: $0) }) {
            return "is a server function, not allowed in a fragment"
        }
        return nil
    }

    /// Whether the `FOR` at `index` starts a row lock: FOR UPDATE, FOR SHARE, FOR NO KEY UPDATE, FOR KEY SHARE.
    private static func locksRows(_ tokens: [SQLToken], after index: Int) -> Bool {
        tokens.isWord(at: index + 1, "update", "share")
            || (tokens.isWord(at: index + 1, "no") && tokens.isWord(at: index + 2, "key"))
            || (tokens.isWord(at: index + 1, "key") && tokens.isWord(at: index + 2, "share"))
    }

    /// The clause the word at `index` starts (`FROM`, `GROUP BY`, `UNION`...), which outside parentheses would end
    /// an expression and carry on the query around it; nil for any other token.
    private static func clauseKeyword(_ tokens: [SQLToken], at index: Int) -> String? {
        let token = tokens[index]
        if token.isWord("where", "having", "window", "limit", "offset", "union", "intersect", "except", "join") {
            return token.normalized.uppercased()
        }
        if token.isWord("from"), !tokens.isDistinctFrom(at: index) { return "FROM" }
        if token.isWord("group", "order"), tokens.isWord(at: index + 1, "by") { return token.normalized.uppercased() + " BY" }
        return nil
    }

    /// Checks a query or source query: the shape, then every relation it reads.
    private static func validateSelect(_ text: String, readsOnlyInput: Bool) throws(SQLFragmentError) {
        let tokens = try significantTokens(text)
        guard tokens[0].isWord("select", "with") else { throw SQLFragmentError("must start with SELECT or WITH") }
        try checkCommon(tokens)
        let input = Array("input".utf8)
        var main = tokens.indices
        var defined: [[UInt8]] = []
        if tokens[0].isWord("with") {
            guard let clause = withClause(tokens, at: 0) else {
                throw SQLFragmentError("has a WITH clause that is not name AS (query), separated by commas")
            }
            defined = clause.queries.map { $0.name }
            for (position, query) in clause.queries.enumerated() {
                // Without RECURSIVE a WITH query sees only those before it: any other name there is a real table.
                let visible = clause.recursive ? defined : Array(defined[..<position])
                var scan = RelationScan(tokens: tokens, visible: readsOnlyInput ? Set(visible + [input]) : nil)
                try scan.check(query.body)
            }
            guard tokens.isWord(at: clause.end, "select") else {
                throw SQLFragmentError("must be one SELECT after its WITH queries")
            }
            main = clause.end..<tokens.count
        }
        var scan = RelationScan(tokens: tokens, visible: readsOnlyInput ? Set(defined + [input]) : nil)
        try scan.check(main)
    }

    /// Reads `WITH [RECURSIVE] name [(columns)] AS [NOT] [MATERIALIZED] (query) [, ...]` at `start`; nil if the
    /// tokens there are not such a list (`with time zone`, `WITH ORDINALITY`).
    fileprivate static func withClause(_ tokens: [SQLToken], at start: Int) -> WithClause? {
        var index = start + 1
        let recursive = tokens.isWord(at: index, "recursive")
        if recursive { index += 1 }
        var queries: [(name: [UInt8], body: Range<Int>)] = []
        while true {
            guard tokens.indices.contains(index), tokens[index].isName else { return nil }
            let name = Array(tokens[index].normalized.utf8)
            index += 1
            if tokens.isPunctuation(at: index, "(") {
                guard let close = closingParenthesis(tokens, from: index) else { return nil }
                index = close + 1
            }
            guard tokens.isWord(at: index, "as") else { return nil }
            index += 1
            if tokens.isWord(at: index, "not") { index += 1 }
            if tokens.isWord(at: index, "materialized") { index += 1 }
            guard tokens.isPunctuation(at: index, "("), let close = closingParenthesis(tokens, from: index) else { return nil }
            queries.append((name, (index + 1)..<close))
            index = close + 1
            guard tokens.isPunctuation(at: index, ",") else { return WithClause(recursive: recursive, queries: queries, end: index) }
            index += 1
        }
    }

    /// The index of the `)` closing the `(` at `open`, or nil.
    private static func closingParenthesis(_ tokens: [SQLToken], from open: Int) -> Int? {
        var depth = 0
        for index in open..<tokens.count where tokens[index].kind == .punctuation {
            if tokens[index].text == "(" {
                depth += 1
            } else if tokens[index].text == ")" {
                depth -= 1
                if depth == 0 { return index }
            }
        }
        return nil
    }
}

/// A query's leading WITH list: each query's name (as bytes, which is how PostgreSQL compares names) and body.
private struct WithClause {
    var recursive: Bool
    var queries: [(name: [UInt8], body: Range<Int>)]
    /// The index just after the list, where the main SELECT starts.
    var end: Int
}

/// Walks a SELECT's tokens and checks what each FROM and JOIN item reads.
private struct RelationScan {
    /// What one open bracket holds so far: whether a SELECT began in it, and whether its FROM list is being read.
    private struct Frame {
        var select = false
        var from = false
    }

    let tokens: [SQLToken]
    /// The relations the query may read, by their bytes; nil for any table of the source.
    let visible: Set<[UInt8]>?
    /// Opening parentheses of parenthesized joins, `FROM (a JOIN b ON ...)`, whose commas also separate FROM items.
    private var joinGroups: Set<Int> = []

    init(tokens: [SQLToken], visible: Set<[UInt8]>?) {
        self.tokens = tokens
        self.visible = visible
    }

    /// Checks every FROM and JOIN item in `range`, which holds balanced brackets.
    mutating func check(_ range: Range<Int>) throws(SQLFragmentError) {
        var frames = [Frame()]
        for index in range {
            let token = tokens[index]
            let top = frames.count - 1
            if token.kind == .punctuation {
                switch token.text {
                case "(", "[": frames.append(Frame(select: false, from: joinGroups.contains(index)))
                case ")", "]": if frames.count > 1 { frames.removeLast() }
                case "," where frames[top].from: try checkItem(at: index + 1, before: range.upperBound)
                default: break
                }
                continue
            }
            guard token.kind == .identifier else { continue }
            switch token.normalized {
            case "select":
                frames[top] = Frame(select: true, from: false)
            // A FROM clause follows a SELECT in the same brackets; extract(day FROM x) and IS DISTINCT FROM do not.
            case "from" where frames[top].select && !tokens.isDistinctFrom(at: index):
                frames[top].from = true
                try checkItem(at: index + 1, before: range.upperBound)
            case "join":
                frames[top].from = true
                try checkItem(at: index + 1, before: range.upperBound)
            case "where", "group", "having", "window", "order", "limit", "offset", "union", "intersect", "except":
                frames[top].from = false
            // A nested WITH has its own scope, which this scan does not follow; only the leading one may define names.
            case "with" where visible != nil && SQLFragment.withClause(tokens, at: index) != nil:
                throw SQLFragmentError("has a WITH inside the query; put every WITH query at its start")
            default:
                break
            }
        }
    }

    /// Checks the FROM item starting at `start`: a relation the query may read, a subquery, a parenthesized join
    /// or a call of generate_series or unnest.
    private mutating func checkItem(at start: Int, before end: Int) throws(SQLFragmentError) {
        var index = start
        while index < end, tokens[index].isWord("lateral", "only") { index += 1 }
        guard index < end else { throw SQLFragmentError("has a FROM or JOIN without a relation") }
        let item = tokens[index]
        if tokens.isPunctuation(at: index, "(") {
            if tokens.isWord(at: index + 1, "select", "with", "values") { return }
            joinGroups.insert(index)
            try checkItem(at: index + 1, before: end)
            return
        }
        guard item.isName else { throw SQLFragmentError("has a FROM item that is not a relation") }
        if tokens.isPunctuation(at: index + 1, "(") {
            let name = item.normalized
            guard SQLFragment.setReturningFunctions.contains(where: { name.matches(namePattern: $0) }) else {
                throw SQLFragmentError("calls \(item.text) in FROM, where only generate_series and unnest may be called")
            }
            return
        }
        guard let visible else { return }
        if tokens.isPunctuation(at: index + 1, ".") {
            let name = tokens[index..<min(index + 3, tokens.count)].map(\.text).joined()
            throw SQLFragmentError("reads \(name); a sql transformation reads only input and its own WITH queries")
        }
        guard visible.contains(Array(item.normalized.utf8)) else {
            throw SQLFragmentError("reads \(item.text); a sql transformation reads only input and its own WITH queries")
        }
    }
}

// MARK: - Lexer

/// PostgreSQL's scanner, reduced to what a fragment may hold. It reads Unicode scalars, never grapheme clusters:
/// a quote followed by a combining mark is one Character to Swift but still a quote to the server.
private struct Lexer {
    /// How a string constant treats backslashes and quotes.
    enum StringStyle: Sendable {
        /// `'...'` and `N'...'`: `''` is a quote.
        case standard
        /// `E'...'`: backslash escapes the next character too.
        case escaped
        /// `B'...'` and `X'...'`: the first quote ends it.
        case bits
    }

    private static let prefixedStrings: [Unicode.Scalar: StringStyle] = [
        "e": .escaped, "E": .escaped, "n": .standard, "N": .standard, "b": .bits, "B": .bits, "x": .bits, "X": .bits,
    ]

    private let scalars: [Unicode.Scalar]
    private var position = 0
    private var tokens: [SQLToken] = []

    init(_ text: String) {
        scalars = Array(text.unicodeScalars)
    }

    /// The whole text's tokens.
    mutating func run() throws(SQLFragmentError) -> [SQLToken] {
        guard scalars.count <= SQLFragment.maximumLength else {
            throw SQLFragmentError("is longer than \(SQLFragment.maximumLength) characters")
        }
        for scalar in scalars where scalar.properties.generalCategory == .control && !scalar.isSpace {
            throw SQLFragmentError(scalar == "\0" ? "contains a NUL character" : "contains a control character")
        }
        while let scalar = at(position) {
            let start = position
            let next = at(position + 1)
            if scalar.isSpace {
                position += 1
                continue
            }
            if startsComment(at: position) { throw SQLFragmentError("contains a comment") }
            switch scalar {
            case "'":
                position += 1
                try skipString(.standard)
                emit(.string, from: start)
            case "\"":
                try skipQuotedIdentifier()
                emit(.quotedIdentifier, from: start)
            case "$":
                throw SQLFragmentError(next?.isDigit == true
                    ? "uses positional parameters; name run parameters as :name" : "uses dollar quoting")
            case ":":
                try colon()
            case _ where scalar.isDigit || (scalar == "." && next?.isDigit == true):
                try skipNumber()
                emit(.number, from: start)
            case "(", ")", "[", "]", ",", ".", ";":
                position += 1
                emit(.punctuation, from: start)
            case _ where scalar.isOperatorCharacter:
                try skipOperator()
                emit(.operator_, from: start)
            case _ where scalar.startsName:
                try word()
            default:
                throw SQLFragmentError("contains an unexpected \(Character(scalar)) outside a string")
            }
        }
        return tokens
    }

    private func at(_ index: Int) -> Unicode.Scalar? {
        index < scalars.count ? scalars[index] : nil
    }

    private func startsComment(at index: Int) -> Bool {
        (scalars[index] == "-" && at(index + 1) == "-") || (scalars[index] == "/" && at(index + 1) == "*")
    }

    private mutating func emit(_ kind: SQLToken.Kind, from start: Int) {
        tokens.append(SQLToken(kind: kind, text: String(String.UnicodeScalarView(scalars[start..<position])), offset: start))
    }

    /// A name, or a string with a one-letter prefix (`E'`, `N'`, `B'`, `X'`).
    private mutating func word() throws(SQLFragmentError) {
        let start = position
        let first = scalars[position]
        let next = at(position + 1)
        if first == "u" || first == "U", next == "&", at(position + 2) == "'" || at(position + 2) == "\"" {
            throw SQLFragmentError("uses unicode escapes")
        }
        if next == "'", let style = Self.prefixedStrings[first] {
            position += 2
            try skipString(style)
            emit(.string, from: start)
            return
        }
        while let scalar = at(position), scalar.continuesName { position += 1 }
        emit(.identifier, from: start)
    }

    /// Moves past a string's body and its closing quote; `position` is just after the opening quote.
    private mutating func skipString(_ style: StringStyle) throws(SQLFragmentError) {
        var backslashes = 0
        while let scalar = at(position) {
            position += 1
            switch scalar {
            case "\\" where style == .escaped:
                guard at(position) != nil else { throw SQLFragmentError("has an unterminated string") }
                position += 1
            case "\\":
                backslashes += 1
                continue
            case "'":
                // With standard_conforming_strings off the server reads \' as an escaped quote, so the string
                // would end elsewhere than here; refuse what the two readings disagree on.
                if style == .standard, backslashes % 2 == 1 {
                    throw SQLFragmentError("has a backslash right before a quote in a string, which some servers read as an escape; use E'...'")
                }
                guard style != .bits, at(position) == "'" else { return }
                position += 1
            default:
                break
            }
            backslashes = 0
        }
        throw SQLFragmentError("has an unterminated string")
    }

    /// Moves past a double-quoted name.
    private mutating func skipQuotedIdentifier() throws(SQLFragmentError) {
        let start = position
        position += 1
        while let scalar = at(position) {
            position += 1
            guard scalar == "\"" else { continue }
            if at(position) == "\"" {
                position += 1
                continue
            }
            guard position - start > 2 else { throw SQLFragmentError("has an empty quoted name") }
            return
        }
        throw SQLFragmentError("has an unterminated quoted name")
    }

    /// `::`, `:=`, a `:name` parameter, or a lone `:` (array slices).
    private mutating func colon() throws(SQLFragmentError) {
        let start = position
        if at(position + 1) == ":" || at(position + 1) == "=" {
            position += 2
            emit(.punctuation, from: start)
        } else if let next = at(position + 1), next.startsName {
            position += 1
            while let scalar = at(position), scalar.continuesName { position += 1 }
            guard scalars[(start + 1)..<position].allSatisfy({ $0.isASCIILetter || $0.isDigit || $0 == "_" }) else {
                throw SQLFragmentError("has a parameter name that is not only letters, digits and _")
            }
            emit(.parameter, from: start)
        } else {
            position += 1
            emit(.punctuation, from: start)
        }
    }

    /// Moves past a number: decimal (`1`, `1.5`, `.5`, `1e-3`, `1_000`) or `0x`, `0o`, `0b`.
    private mutating func skipNumber() throws(SQLFragmentError) {
        let malformed = SQLFragmentError("contains a malformed number")
        let radixDigit: ((Unicode.Scalar) -> Bool)?
        switch at(position + 1) ?? " " {
        case "x", "X": radixDigit = { $0.isHexDigit }
        case "o", "O": radixDigit = { (0x30...0x37).contains($0.value) }
        case "b", "B": radixDigit = { $0 == "0" || $0 == "1" }
        default: radixDigit = nil
        }
        if scalars[position] == "0", let radixDigit, let first = at(position + 2), radixDigit(first) || first == "_" {
            position += 2
            skipDigits(radixDigit, afterPrefix: true)
        } else {
            skipDigits(\.isDigit)
            if at(position) == ".", at(position + 1) != "." {
                position += 1
                skipDigits(\.isDigit)
            }
            if at(position) == "e" || at(position) == "E" {
                var digits = position + 1
                if at(digits) == "+" || at(digits) == "-" { digits += 1 }
                guard at(digits)?.isDigit == true else { throw malformed }
                position = digits
                skipDigits(\.isDigit)
            }
        }
        // The server refuses a number run into a name (or, before PostgreSQL 15, splits it: `1from`).
        if at(position)?.continuesName == true { throw malformed }
    }

    /// Moves past digits, allowing a single `_` between two of them.
    private mutating func skipDigits(_ isDigit: (Unicode.Scalar) -> Bool, afterPrefix: Bool = false) {
        var afterDigit = afterPrefix
        while let scalar = at(position) {
            if isDigit(scalar) {
                afterDigit = true
            } else if scalar == "_", afterDigit, let next = at(position + 1), isDigit(next) {
                afterDigit = false
            } else {
                return
            }
            position += 1
        }
    }

    /// Moves past an operator, splitting it the way the server does.
    private mutating func skipOperator() throws(SQLFragmentError) {
        var end = position
        while let scalar = at(end), scalar.isOperatorCharacter {
            if startsComment(at: end) { throw SQLFragmentError("contains a comment") }
            end += 1
        }
        var length = end - position
        // As in PostgreSQL: `=-1` is `=` then `-1`, unless the operator holds a character only operators use.
        if !scalars[position..<end].contains(where: { "~!@#%^&|`?".unicodeScalars.contains($0) }) {
            while length > 1, scalars[position + length - 1] == "+" || scalars[position + length - 1] == "-" { length -= 1 }
        }
        position += length
    }
}

// MARK: - Names

/// A validated SQL identifier (a column or table name from a user): 1–63 bytes of UTF-8, no control characters.
struct SQLIdentifier: Sendable, Hashable {
    /// The name as PostgreSQL stores it.
    let name: String

    /// Validates `name`, taken as written (no case folding).
    init(_ name: String) throws(SQLFragmentError) {
        guard !name.isEmpty else { throw SQLFragmentError("is empty") }
        guard name.utf8.count <= 63 else { throw SQLFragmentError("is longer than 63 bytes") }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw SQLFragmentError("contains a control character")
        }
        self.name = name
    }

    /// The name double-quoted for SQL, embedded quotes doubled: `a"b` is `"a""b"`.
    var quoted: String { Self.quote(name) }

    /// A name as SQL writes it: double-quoted, embedded quotes doubled (for names PostgreSQL itself reported, which
    /// need no validation).
    static func quote(_ name: String) -> String { "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
}

/// A table name, `schema.table` or `table` (in the schema public).
struct SQLTableName: Sendable, Hashable {
    /// The schema, public unless given.
    let schema: SQLIdentifier
    /// The table.
    let table: SQLIdentifier

    /// The table `table` in `schema`.
    init(schema: SQLIdentifier, table: SQLIdentifier) {
        self.schema = schema
        self.table = table
    }

    /// Parses `table`, `schema.table` or double-quoted parts (`"My Schema"."Table"`); unquoted parts are folded to
    /// lowercase, as PostgreSQL folds them.
    init(parsing text: String) throws(SQLFragmentError) {
        let notATable = SQLFragmentError("is not a table name; write table or schema.table, double-quoting names with other characters")
        let scalars = Array(text.unicodeScalars)
        var parts: [String] = []
        var index = 0
        while true {
            var part = String.UnicodeScalarView()
            if index < scalars.count, scalars[index] == "\"" {
                index += 1
                while true {
                    guard index < scalars.count else { throw SQLFragmentError("has an unterminated quoted name") }
                    if scalars[index] == "\"" {
                        index += 1
                        guard index < scalars.count, scalars[index] == "\"" else { break }
                    }
                    part.append(scalars[index])
                    index += 1
                }
                parts.append(String(part))
            } else {
                while index < scalars.count, scalars[index] != ".", scalars[index] != "\"" {
                    part.append(scalars[index])
                    index += 1
                }
                guard let first = part.first, first.startsName, part.allSatisfy(\.continuesName) else { throw notATable }
                parts.append(String(part).asciiLowercased)
            }
            guard index < scalars.count else { break }
            guard scalars[index] == "." else { throw notATable }
            index += 1
        }
        guard parts.count <= 2 else { throw SQLFragmentError("has more than two parts; write table or schema.table") }
        schema = try SQLIdentifier(parts.count == 2 ? parts[0] : "public")
        table = try SQLIdentifier(parts[parts.count - 1])
    }

    /// `"schema"."table"`, for SQL.
    var quoted: String { "\(schema.quoted).\(table.quoted)" }

    /// `schema.table`, for people.
    var displayName: String { "\(schema.name).\(table.name)" }
}

// MARK: - Helpers

extension SQLToken {
    /// Whether this is a name, quoted or not.
    fileprivate var isName: Bool { kind == .identifier || kind == .quotedIdentifier }

    /// Whether this is one of the unquoted `words` (given in lowercase).
    fileprivate func isWord(_ words: String...) -> Bool {
        isWord(in: words)
    }

    /// Whether this is one of the unquoted `words` (given in lowercase).
    fileprivate func isWord(in words: [String]) -> Bool {
        guard kind == .identifier else { return false }
        let name = normalized
        return words.contains { name.matches(namePattern: $0) }
    }
}

extension [SQLToken] {
    /// Whether a token at `index` exists and is the punctuation `text`.
    fileprivate func isPunctuation(at index: Int, _ text: String) -> Bool {
        indices.contains(index) && self[index].kind == .punctuation && self[index].text == text
    }

    /// Whether a token at `index` exists and is one of the unquoted `words`.
    fileprivate func isWord(at index: Int, _ words: String...) -> Bool {
        indices.contains(index) && self[index].isWord(in: words)
    }

    /// Whether the `FROM` at `index` is the comparison `IS [NOT] DISTINCT FROM`.
    fileprivate func isDistinctFrom(at index: Int) -> Bool {
        isWord(at: index - 1, "distinct") && isWord(at: index - 2, "is", "not")
    }
}

extension Unicode.Scalar {
    /// An ASCII letter.
    fileprivate var isASCIILetter: Bool { (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) }
    /// An ASCII digit.
    fileprivate var isDigit: Bool { (0x30...0x39).contains(value) }
    /// An ASCII hexadecimal digit.
    fileprivate var isHexDigit: Bool { isDigit || (0x41...0x46).contains(value) || (0x61...0x66).contains(value) }
    /// What may start an unquoted name in PostgreSQL: a letter, `_` or any non-ASCII character.
    fileprivate var startsName: Bool { isASCIILetter || self == "_" || value >= 0x80 }
    /// What may continue an unquoted name: also digits and `$`.
    fileprivate var continuesName: Bool { startsName || isDigit || self == "$" }
    /// A character PostgreSQL builds operators from.
    fileprivate var isOperatorCharacter: Bool { "+-*/<>=~!@#%^&|`?".unicodeScalars.contains(self) }
    /// Whitespace a fragment may hold; form feed and vertical tab are refused as control characters.
    fileprivate var isSpace: Bool { self == " " || self == "\t" || self == "\n" || self == "\r" }
}

extension String {
    /// The string with ASCII letters lowercased and nothing else changed, as PostgreSQL folds unquoted names.
    fileprivate var asciiLowercased: String {
        var folded = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            folded.append((0x41...0x5A).contains(scalar.value) ? Unicode.Scalar(UInt8(scalar.value + 32)) : scalar)
        }
        return String(folded)
    }

    /// Whether this name is `pattern`, or starts with it when the pattern ends in `*`; byte for byte, as
    /// PostgreSQL compares names (Swift's `==` would equate canonically equivalent spellings).
    fileprivate func matches(namePattern pattern: String) -> Bool {
        if pattern.hasSuffix("*") { return utf8.starts(with: pattern.utf8.dropLast()) }
        return utf8.elementsEqual(pattern.utf8)
    }
}
