// Every suite of this target, one at a time.
import Logging
import Testing

/// The suites of PosternHardeningTests, run one at a time (nested suites and parameterized
/// cases too). The live ones (slow-loris, lying lengths, disconnects, a client that never reads,
/// unsafe responses, socket safety) start real servers in this process: those need its
/// cooperative threads (as many as cores, two here), its NIO event loops and its descriptor
/// table, and each test holds up to a thousand sockets. The round-trip and corpus-replay tests
/// are synchronous and keep the cooperative threads busy for tens of seconds: beside them, a
/// live test's server could not answer within the test's deadlines.
@Suite(.serialized)
enum Hardening {}

extension Logger {
    /// The in-process servers' logger: errors only. A thousand closed connections would
    /// otherwise be a thousand notice lines, written while the test measures the server.
    static var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }
}
