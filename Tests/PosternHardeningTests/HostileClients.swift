// The live hostile-client suites, run one at a time.
import Testing

/// Slow-loris, lying lengths, disconnects, a client that never reads, unsafe responses and
/// socket safety, each against a real server on loopback. They run one at a time (their nested
/// suites are serialized too): each holds up to a thousand sockets, and they share this
/// process's two cooperative threads, NIO's event loops and its descriptor table with the
/// servers under test. The other suites of the target run beside them.
@Suite("Hostile clients", .serialized)
enum HostileClients {}
