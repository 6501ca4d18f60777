import PlatformTesting
import Testing

/// Every test that touches the real PostgreSQL and Redis of `deploy/local.sh test` is nested here.
///
/// They run one at a time: some restart a server, which would break whatever else ran at that moment.
@Suite(.serialized, .enabled(if: TestEnvironment.isEnabled, "needs the servers of deploy/local.sh test"))
struct Integration {}
