#if canImport(Glibc)
import Glibc
#endif

/// The marker a master puts in a worker's environment: the worker re-executes the same binary
/// with the same arguments, and this tells it to serve the inherited listeners instead of binding
/// (or starting workers of its own).
///
/// ```
/// POSTERN_WORKER=3                          the worker's slot number
/// POSTERN_WORKER_LISTENERS=http=5,fastcgi=6 protocol=fd, in the order of the listener flags
/// POSTERN_WORKER_STATS=/tmp/postern-…/      where the worker reports its counters
/// POSTERN_WORKER_MASTER=1234                the master's pid (a worker whose parent is not
///                                           that has lost its master and leaves)
/// ```
struct WorkerEnvironment: Sendable {
    static let markerKey = "POSTERN_WORKER"
    static let listenersKey = "POSTERN_WORKER_LISTENERS"
    static let statsKey = "POSTERN_WORKER_STATS"
    static let masterKey = "POSTERN_WORKER_MASTER"

    let slot: Int
    let listeners: [(GatewayProtocolName, Int32)]
    let statsDirectory: String
    /// The master's pid, when it said.
    let master: Int32?

    typealias GatewayProtocolName = String

    /// The marker in `environment`, or `nil` in a process that is no worker.
    init?(_ environment: [String: String]) {
        guard let slotText = environment[Self.markerKey], let slot = Int(slotText),
            let listenersText = environment[Self.listenersKey], let stats = environment[Self.statsKey]
        else { return nil }
        var listeners: [(String, Int32)] = []
        for entry in listenersText.split(separator: ",") {
            let parts = entry.split(separator: "=")
            guard parts.count == 2, let fd = Int32(parts[1]) else { return nil }
            listeners.append((String(parts[0]), fd))
        }
        self.slot = slot
        self.listeners = listeners
        self.statsDirectory = stats
        self.master = environment[Self.masterKey].flatMap { Int32($0) }
    }

    /// The variables to add to a worker's environment.
    static func variables(slot: Int, listeners: [(String, Int32)], statsDirectory: String) -> [String: String] {
        [
            markerKey: String(slot),
            listenersKey: listeners.map { "\($0.0)=\($0.1)" }.joined(separator: ","),
            statsKey: statsDirectory,
            masterKey: String(getpid()),
        ]
    }
}
