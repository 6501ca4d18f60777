import Foundation
@testable import PipelineRunner
import Testing

@Suite struct SQLFragmentTests {
    /// A fragment that must be refused, and a piece of the reason it must be refused with.
    struct Refusal: Sendable, CustomTestStringConvertible {
        var label: String
        var text: String
        var reason: String
        var testDescription: String { label }

        init(_ label: String, _ text: String, _ reason: String) {
            self.label = label
            self.text = text
            self.reason = reason
        }
    }

    /// What a rule says about a fragment: its reason for refusing, or "accepted".
    static func verdict(_ check: () throws(SQLFragmentError) -> Void) -> String {
        do throws(SQLFragmentError) {
            try check()
            return "accepted"
        } catch {
            return error.reason
        }
    }

    static func expressionVerdict(_ text: String) -> String {
        verdict { () throws(SQLFragmentError) in try SQLFragment.validateExpression(text) }
    }

    static func queryVerdict(_ text: String) -> String {
        verdict { () throws(SQLFragmentError) in try SQLFragment.validateQuery(text) }
    }

    static func typeVerdict(_ text: String) -> String {
        verdict { () throws(SQLFragmentError) in try SQLFragment.validateTypeName(text) }
    }

    // MARK: - Expressions

    static let refusedExpressions: [Refusal] = [
        // Comments, wherever they hide.
        Refusal("line comment", "amount > 0 -- AND status = 'void'", "contains a comment"),
        Refusal("block comment", "amount /* hidden */ > 0", "contains a comment"),
        Refusal("nested block comment", "amount > 0 /* a /* b */ c */", "contains a comment"),
        Refusal("unterminated block comment", "amount > 0 /* and the rest", "contains a comment"),
        Refusal("comment right after a string", "status = 'a'--'", "contains a comment"),
        Refusal("comment glued to an operator", "amount >--0", "contains a comment"),
        Refusal("comment start inside an operator", "amount */* x */ 2", "contains a comment"),
        // Statement separators.
        Refusal("separator then a statement", "amount > 0; DROP TABLE payments", "statement separator"),
        Refusal("separator after a closing parenthesis", "lower(name);", "statement separator"),
        Refusal("separator among odd spacing", "amount > 0 \t ; \n", "statement separator"),
        // Quoting that hides text from a naive reader.
        Refusal("dollar quoting", "$$x$$ = note", "dollar quoting"),
        Refusal("tagged dollar quoting", "note = $a$ '; DROP TABLE x; $a$", "dollar quoting"),
        Refusal("unicode escape string", #"name = U&'\0064rop'"#, "unicode escapes"),
        Refusal("unicode escape identifier", #"U&"d\0061ta" > 0"#, "unicode escapes"),
        Refusal("lowercase unicode escape", #"name = u&'\0064'"#, "unicode escapes"),
        // E'\'' is one quote; what follows is code, and holds a comment.
        Refusal("E-string breaking out", #"name = E'\'' OR 1=1 --'"#, "contains a comment"),
        Refusal("backslash before a quote in a plain string", #"name = 'a\' OR 1=1 OR name = '"#, "backslash right before a quote"),
        Refusal("unterminated string", "status = 'paid", "unterminated string"),
        Refusal("unterminated E-string", #"status = E'paid\'"#, "unterminated string"),
        Refusal("unterminated quoted name", #""status = 1"#, "unterminated quoted name"),
        Refusal("empty quoted name", "\"\" = 1", "empty quoted name"),
        // Brackets.
        Refusal("unclosed parenthesis", "lower(name", "unbalanced"),
        Refusal("breaking out of parentheses", "1) OR (1=1", "unbalanced"),
        Refusal("crossed brackets", "(tags[1)]", "unbalanced"),
        // Queries inside expressions.
        Refusal("scalar subquery", "amount > (SELECT 1)", "contains a subquery"),
        Refusal("EXISTS subquery", "EXISTS (SELECT 1 FROM users)", "contains a subquery"),
        Refusal("write in a nested WITH", "(WITH d AS (DELETE FROM t RETURNING 1) SELECT 1) IS NULL", "uses DELETE"),
        Refusal("a whole query", "SELECT password FROM users", "is a query"),
        Refusal("TABLE command", "x IN (TABLE users)", "uses TABLE"),
        Refusal("UNION outside parentheses", "amount > 0 UNION SELECT 1", "uses UNION outside parentheses"),
        Refusal("FROM outside parentheses", "amount FROM users", "uses FROM outside parentheses"),
        Refusal("ORDER BY outside parentheses", "amount ORDER BY 1", "uses ORDER BY outside parentheses"),
        // Functions that reach out of the query.
        Refusal("pg_sleep", "pg_sleep(5) IS NULL", "calls pg_sleep"),
        Refusal("PG_SLEEP in capitals", "PG_SLEEP(5) IS NULL", "calls pg_sleep"),
        Refusal("schema-qualified pg_sleep", "pg_catalog.pg_sleep(5) IS NULL", "calls pg_sleep"),
        Refusal("quoted pg_sleep", #""pg_sleep"(5) IS NULL"#, "calls pg_sleep"),
        Refusal("pg_sleep_for", "pg_sleep_for('5 seconds') IS NULL", "calls pg_sleep_for"),
        Refusal("pg_read_file", "pg_read_file('/etc/passwd') <> ''", "calls pg_read_file, which reaches the server's files"),
        Refusal("lo_import", "lo_import('/etc/passwd') > 0", "calls lo_import"),
        Refusal("dblink", "dblink('host=x', 'select 1') IS NULL", "calls dblink"),
        Refusal("COPY to a program", "COPY (SELECT 1) TO PROGRAM 'curl x'", "uses COPY"),
        Refusal("query_to_xml", "query_to_xml('select 1', true, true, '') IS NULL", "calls query_to_xml, which runs SQL given as text"),
        Refusal("set_config", "set_config('x', 'y', false) = 'y'", "calls set_config"),
        Refusal("current_setting", "current_setting('data_directory') <> ''", "calls current_setting"),
        Refusal("nextval", "nextval('s') > 0", "calls nextval"),
        Refusal("pg_terminate_backend", "pg_terminate_backend(1)", "calls pg_terminate_backend"),
        Refusal("pg_advisory_lock", "pg_advisory_lock(1) IS NULL", "calls pg_advisory_lock"),
        Refusal("an unlisted pg_ function", "pg_get_userbyid(10) = 'x'", "calls pg_get_userbyid"),
        Refusal("a function called by its schema", "aws_s3.query_export_to_s3('select 1', 'b') IS NULL", "by its schema"),
        // System catalogs.
        Refusal("pg_shadow", "pg_shadow.passwd IS NOT NULL", "reads the system catalogs"),
        Refusal("information_schema", "information_schema.tables.table_name = 'x'", "reads the system catalogs"),
        // Shape.
        Refusal("two expressions", "a, b", "more than one expression"),
        Refusal("positional parameter", "amount > $1", "positional parameters"),
        Refusal("parameter name with a $", ":na$me = 1", "parameter name"),
        Refusal("NUL character", "amount > 0\u{0}", "NUL"),
        Refusal("bell character", "amount\u{07} > 0", "control character"),
        Refusal("form feed", "amount\u{0C}> 0", "control character"),
        Refusal("empty", "", "is empty"),
        Refusal("whitespace only", " \n\t ", "is empty"),
        Refusal("over-long", String(repeating: "a", count: 10_001), "longer than 10000"),
        Refusal("backslash outside a string", #"\copy payments to 'x'"#, #"unexpected \"#),
        Refusal("number run into a word", "amount > 0x1Fg", "malformed number"),
        Refusal("keyword glued to a number", "amount > 1or 1=1", "malformed number"),
        // Words that write, lock or control, in any case and spacing.
        Refusal("mixed-case keyword", "x = 1 OR dRoP TABLE payments", "uses DROP"),
        Refusal("keywords split by tabs and newlines", "amount > 0\n\tOR\tDELETE\nFROM payments", "uses DELETE"),
        Refusal("SELECT INTO", "amount > 0 INTO x", "uses INTO"),
        Refusal("row lock", "amount > 0 FOR UPDATE", "locks rows"),
        Refusal("SET", "SET ROLE postgres", "uses SET"),
        Refusal("transaction control", "x = 1 OR ROLLBACK", "uses ROLLBACK"),
    ]

    @Test(arguments: refusedExpressions)
    func expressionIsRefused(_ example: Refusal) {
        let verdict = Self.expressionVerdict(example.text)
        #expect(verdict.contains(example.reason))
    }

    static let acceptedExpressions: [String] = [
        "amount > 0 AND status IN ('paid', 'settled')",
        "date_trunc('day', created_at)",
        "coalesce(discount, 0) * 1.2",
        "CASE WHEN amount > 100 THEN 'big' ELSE 'small' END",
        "amount::numeric(12,2)",
        "created_at >= :start_date",
        "sum(amount)",
        "count(DISTINCT customer_id)",
        "avg(price) FILTER (WHERE price > 0)",
        "note = 'DROP TABLE; --'",
        "note <> 'x; /* y */ $$ z'",
        #""delete" > 0"#,
        #""update" > 0 AND "Amount ""net""" > 0"#,
        #"t."close" > t."open""#,
        "x IS NOT NULL",
        "col ~ '^[a-z]+$'",
        "ARRAY[1,2]",
        "tags @> ARRAY['a']",
        #"E'it\'s' = name"#,
        // One string: \\ is a backslash and '' a quote, so the "comment" is inside it.
        #"note = E'\\'' OR 1=1 --'"#,
        #"replace(path, '\\', '/')"#,
        "a IS DISTINCT FROM b",
        "extract(day FROM created_at)",
        "substring(name FROM 1 FOR 3)",
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY price)",
        "string_agg(name, ', ' ORDER BY name)",
        "created_at::timestamp with time zone AT TIME ZONE 'UTC'",
        "row_number() OVER (PARTITION BY a ORDER BY b)",
        "1.5e10 + .5 + 0x1F + 1_000 + amount*-1",
        "payload->>'kind' = 'refund'",
        "now() - interval '1 day' < created_at",
        "x = ANY(:ids) AND tags[1:2] IS NOT NULL",
        "pg_typeof(amount)::text = 'integer'",
        "amount\n\t> 0\r\n AND\tstatus = 'paid'",
    ]

    @Test(arguments: acceptedExpressions)
    func expressionIsAccepted(_ text: String) {
        #expect(Self.expressionVerdict(text) == "accepted")
    }

    // MARK: - Queries

    static let acceptedQueries: [String] = [
        "SELECT day, sum(amount) AS total FROM input WHERE amount > 0 GROUP BY day",
        "WITH t AS (SELECT * FROM input) SELECT * FROM t",
        "WITH a AS (SELECT * FROM input), b AS NOT MATERIALIZED (SELECT * FROM a) SELECT * FROM b, input",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
        "SELECT * FROM input WHERE amount > (SELECT avg(amount) FROM input)",
        "SELECT a.id, b.id AS parent FROM input a JOIN input b ON a.parent_id = b.id",
        "SELECT * FROM ((input a JOIN input b USING (id)) LEFT JOIN input c ON c.id = a.id)",
        "SELECT id FROM input UNION ALL SELECT id FROM input EXCEPT SELECT id FROM input WHERE false",
        "SELECT g FROM generate_series(1, 10) AS g",
        "SELECT i.id, tag FROM input i, LATERAL unnest(i.tags) AS tag",
        "SELECT * FROM (SELECT id FROM input) AS s",
        "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name)",
        "SELECT * FROM input WHERE created_at >= :start_date",
        "SELECT extract(day FROM created_at) AS d, count(*) FROM input GROUP BY 1 ORDER BY 1, 2 LIMIT 10",
        "SELECT * FROM input WHERE a IS NOT DISTINCT FROM b",
        "SELECT created_at::timestamp with time zone FROM input",
        #"SELECT * FROM "input" WHERE note = 'FROM users; --'"#,
    ]

    @Test(arguments: acceptedQueries)
    func queryIsAccepted(_ text: String) {
        #expect(Self.queryVerdict(text) == "accepted")
    }

    static let refusedQueries: [Refusal] = [
        Refusal("another table", "SELECT * FROM users", "reads users"),
        Refusal("input under a schema", "SELECT * FROM public.input", "reads public.input"),
        Refusal("a second statement", "SELECT 1; DROP TABLE x", "statement separator"),
        Refusal("SELECT INTO", "SELECT * INTO x FROM input", "uses INTO"),
        Refusal("FOR UPDATE", "SELECT * FROM input FOR UPDATE", "locks rows"),
        Refusal("FOR NO KEY UPDATE", "SELECT * FROM input FOR NO KEY UPDATE", "locks rows"),
        Refusal("write in a WITH query", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "uses DELETE"),
        Refusal("TABLE command", "TABLE input", "must start with SELECT or WITH"),
        Refusal("COPY", "COPY (SELECT 1) TO PROGRAM 'x'", "must start with SELECT or WITH"),
        Refusal("pg_sleep", "SELECT pg_sleep(10) FROM input", "calls pg_sleep"),
        Refusal("a comma join", "SELECT * FROM input, users", "reads users"),
        Refusal("a join", "SELECT * FROM input JOIN accounts ON true", "reads accounts"),
        Refusal("a quoted table", #"SELECT * FROM input CROSS JOIN "Users""#, #"reads "Users""#),
        Refusal("a subquery on another table", "SELECT * FROM input WHERE id IN (SELECT id FROM users)", "reads users"),
        Refusal("a union with another table", "SELECT id FROM input UNION SELECT id FROM users", "reads users"),
        Refusal("a lateral subquery", "SELECT * FROM input, LATERAL (SELECT * FROM users) u", "reads users"),
        Refusal("a parenthesized join", "SELECT * FROM (input a JOIN users b ON true)", "reads users"),
        Refusal("ONLY", "SELECT * FROM ONLY users", "reads users"),
        // Without RECURSIVE, a WITH query's body sees only earlier WITH queries: these name real tables.
        Refusal("a forward reference", "WITH a AS (SELECT * FROM users), users AS (SELECT * FROM input) SELECT * FROM a", "reads users"),
        Refusal("a self reference", "WITH users AS (SELECT * FROM users) SELECT * FROM users", "reads users"),
        Refusal("a nested WITH", "SELECT * FROM (WITH users AS (SELECT 1) SELECT * FROM users) a, users", "WITH inside the query"),
        Refusal("a function in FROM", "SELECT * FROM read_csv('x')", "calls read_csv in FROM"),
        Refusal("a system catalog", "SELECT * FROM pg_shadow", "reads the system catalogs"),
        Refusal("TABLE in a subquery", "SELECT * FROM input WHERE id IN (TABLE users)", "uses TABLE"),
        Refusal("a write after WITH", "WITH t AS (SELECT 1) DELETE FROM x", "uses DELETE"),
        Refusal("dollar quoting", "SELECT $$a$$ FROM input", "dollar quoting"),
    ]

    @Test(arguments: refusedQueries)
    func queryIsRefused(_ example: Refusal) {
        let verdict = Self.queryVerdict(example.text)
        #expect(verdict.contains(example.reason))
    }

    @Test func aSourceQueryReadsTheSourcesTablesButNotItsCatalogs() {
        func sourceVerdict(_ text: String) -> String {
            Self.verdict { () throws(SQLFragmentError) in try SQLFragment.validateSourceQuery(text) }
        }
        #expect(sourceVerdict("SELECT o.id, c.name FROM sales.orders o JOIN customers c ON c.id = o.customer_id") == "accepted")
        #expect(sourceVerdict("SELECT * FROM information_schema.tables").contains("reads the system catalogs"))
        #expect(sourceVerdict("SELECT * FROM orders FOR SHARE").contains("locks rows"))
        #expect(sourceVerdict("DELETE FROM orders").contains("must start with SELECT or WITH"))
    }

    // MARK: - Type names

    @Test(arguments: [
        "numeric(12,2)", "numeric(12, 2)", "double precision", "timestamp with time zone", "timestamp(3) without time zone",
        "text[]", "int[][]", "integer[3]", "varchar(20)", "character varying(10)", "public.money_type", #""MyType""#, "INTERVAL",
    ])
    func typeNameIsAccepted(_ text: String) {
        #expect(Self.typeVerdict(text) == "accepted")
    }

    @Test(arguments: [
        ("int; drop table x", "statement separator"),
        ("text)", "unbalanced"),
        ("int4 --", "contains a comment"),
        ("'text'", "is not a type name"),
        ("numeric(:a)", "is not a type name"),
        ("numeric(1.5)", "is not a type name"),
        ("int + 1", "is not a type name"),
        ("a.b.c", "is not a type name"),
        ("int[x]", "is not a type name"),
        ("text DROP", "uses DROP"),
        ("pg_sleep(1)", "calls pg_sleep"),
        ("", "is empty"),
    ])
    func typeNameIsRefused(_ text: String, _ reason: String) {
        #expect(Self.typeVerdict(text).contains(reason))
    }

    // MARK: - Names

    @Test func identifiersAreQuotedWithEmbeddedQuotesDoubled() throws {
        #expect(try SQLIdentifier(#"a"b"#).quoted == #""a""b""#)
        #expect(try SQLIdentifier("Order Items").quoted == #""Order Items""#)
        #expect(try SQLIdentifier(String(repeating: "a", count: 63)).name.count == 63)
        #expect(try SQLIdentifier(String(repeating: "\u{E9}", count: 31) + "a").name.utf8.count == 63)
    }

    @Test(arguments: [
        (String(repeating: "a", count: 64), "longer than 63 bytes"),
        (String(repeating: "\u{E9}", count: 32), "longer than 63 bytes"),
        ("", "is empty"),
        ("a\u{0}b", "control character"),
        ("a\tb", "control character"),
    ])
    func badIdentifiersAreRefused(_ name: String, _ reason: String) {
        #expect(Self.verdict { () throws(SQLFragmentError) in _ = try SQLIdentifier(name) }.contains(reason))
    }

    @Test func tableNamesParseWithPublicAsTheDefaultSchema() throws {
        let qualified = try SQLTableName(parsing: "public.transactions")
        #expect(qualified.schema.name == "public")
        #expect(qualified.table.name == "transactions")
        #expect(qualified.quoted == #""public"."transactions""#)
        #expect(qualified.displayName == "public.transactions")

        #expect(try SQLTableName(parsing: "transactions") == qualified)
        // Unquoted names fold to lowercase, as PostgreSQL folds them.
        #expect(try SQLTableName(parsing: "Public.Transactions") == qualified)

        let quoted = try SQLTableName(parsing: #""My Schema"."T""#)
        #expect(quoted.schema.name == "My Schema")
        #expect(quoted.table.name == "T")
        #expect(quoted.quoted == #""My Schema"."T""#)

        let odd = try SQLTableName(parsing: #""a.b"."we""ird""#)
        #expect(odd.schema.name == "a.b")
        #expect(odd.table.name == #"we"ird"#)
        #expect(odd.quoted == #""a.b"."we""ird""#)
    }

    @Test(arguments: [
        ("a.b.c", "schema.table"),
        ("", "is not a table name"),
        (".t", "is not a table name"),
        ("s.", "is not a table name"),
        ("a..b", "is not a table name"),
        ("my table", "is not a table name"),
        (#""a"b"#, "is not a table name"),
        (#""open"#, "unterminated"),
        ("\"\".t", "is empty"),
        (String(repeating: "t", count: 64), "longer than 63 bytes"),
    ])
    func badTableNamesAreRefused(_ text: String, _ reason: String) {
        #expect(Self.verdict { () throws(SQLFragmentError) in _ = try SQLTableName(parsing: text) }.contains(reason))
    }

    // MARK: - Tokens and parameters

    @Test func parametersAreListedOnceInOrderOfFirstUse() throws {
        #expect(try SQLFragment.parameters(in: "created_at >= :start_date AND created_at < :end_date AND x::int > 0")
            == ["start_date", "end_date"])
        #expect(try SQLFragment.parameters(in: ":b + :a + :b = ':c' AND \":d\" = 1") == ["b", "a"])
        #expect(try SQLFragment.parameters(in: "x = 1").isEmpty)
    }

    @Test func tokensCarryTheirKindTextAndOffset() throws {
        #expect(try SQLFragment.tokenize("x::int >= :since") == [
            SQLToken(kind: .identifier, text: "x", offset: 0),
            SQLToken(kind: .punctuation, text: "::", offset: 1),
            SQLToken(kind: .identifier, text: "int", offset: 3),
            SQLToken(kind: .operator_, text: ">=", offset: 7),
            SQLToken(kind: .parameter, text: ":since", offset: 10),
        ])
        let strings = try SQLFragment.tokenize(#"E'\'' || 'a''b' || B'01'"#)
        #expect(strings.map(\.kind) == [.string, .operator_, .string, .operator_, .string])
        #expect(strings.map(\.text) == [#"E'\''"#, "||", "'a''b'", "||", "B'01'"])
        // As PostgreSQL splits them: `*-` is `*` then `-`, but `@-` stays one operator.
        #expect(try SQLFragment.tokenize("a*-1").map(\.text) == ["a", "*", "-", "1"])
        #expect(try SQLFragment.tokenize("a @-1").map(\.text) == ["a", "@-", "1"])
    }

    @Test func namesAreNormalizedAsPostgreSQLReadsThem() throws {
        let tokens = try SQLFragment.tokenize(#"CreatedAt "Foo""Bar" :Since"#)
        #expect(tokens.map(\.normalized) == ["createdat", #"Foo"Bar"#, "Since"])
        #expect(tokens.map(\.kind) == [.identifier, .quotedIdentifier, .parameter])
    }
}
