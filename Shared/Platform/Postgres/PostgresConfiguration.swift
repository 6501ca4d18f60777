/// Where and how to connect to a PostgreSQL server.
///
/// `description` leaves the password out, so a configuration can be logged.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// Host name, IP address or a unix-socket directory (a path starting with `/`).
    public var host: String
    /// TCP port.
    public var port: Int
    /// Role to log in as.
    public var username: String
    /// Its password, if the server asks for one.
    public var password: String?
    /// Database name.
    public var database: String
    /// libpq `sslmode` (`disable`, `prefer`, `require`, `verify-full`, ...).
    public var sslMode: String
    /// Seconds libpq waits for a connection before giving up.
    public var connectTimeoutSeconds: Int
    /// Reported in `pg_stat_activity`.
    public var applicationName: String
    /// How a silently dead server or network is noticed on an idle or waiting TCP connection.
    public var liveness: Liveness

    /// TCP keepalives and the user timeout (libpq `keepalives_*`, `tcp_user_timeout`; ignored on unix sockets).
    /// Without them a server that vanished without closing the socket holds a COPY or a query for hours.
    public struct Liveness: Sendable, Equatable {
        /// Idle seconds before the first probe.
        public var idleSeconds: Int
        /// Seconds between probes.
        public var intervalSeconds: Int
        /// Unanswered probes before the connection is dropped.
        public var count: Int
        /// Milliseconds sent data may stay unacknowledged before the connection is dropped (0: the system's).
        public var userTimeoutMilliseconds: Int

        /// Creates settings; the defaults notice a dead peer within about a minute.
        public init(idleSeconds: Int = 30, intervalSeconds: Int = 10, count: Int = 3, userTimeoutMilliseconds: Int = 60_000) {
            self.idleSeconds = idleSeconds
            self.intervalSeconds = intervalSeconds
            self.count = count
            self.userTimeoutMilliseconds = userTimeoutMilliseconds
        }
    }

    /// Creates a configuration.
    public init(
        host: String = "127.0.0.1", port: Int = 5432, username: String, password: String? = nil, database: String,
        sslMode: String = "prefer", connectTimeoutSeconds: Int = 5, applicationName: String = "data-platform",
        liveness: Liveness = Liveness()
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.sslMode = sslMode
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.applicationName = applicationName
        self.liveness = liveness
    }

    /// libpq keyword/value pairs. Passed as arrays, never as one conninfo string, so no value needs escaping.
    var libpqParameters: [(String, String)] {
        var parameters = [
            ("host", host), ("port", String(port)), ("user", username), ("dbname", database),
            ("sslmode", sslMode), ("connect_timeout", String(max(1, connectTimeoutSeconds))),
            ("application_name", applicationName), ("client_encoding", "UTF8"),
            // The text decoders in this module read ISO timestamps in UTC.
            ("options", "-c DateStyle=ISO,YMD -c TimeZone=UTC -c extra_float_digits=3"),
            ("keepalives", "1"), ("keepalives_idle", String(max(1, liveness.idleSeconds))),
            ("keepalives_interval", String(max(1, liveness.intervalSeconds))), ("keepalives_count", String(max(1, liveness.count))),
            ("tcp_user_timeout", String(max(0, liveness.userTimeoutMilliseconds))),
        ]
        if let password { parameters.append(("password", password)) }
        return parameters
    }

    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(sslMode)"
    }
}
