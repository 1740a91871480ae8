import PosternSupervision

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
/// POSTERN_TICKET_SECRET_FD=5                with TLS listeners: the descriptor to read the
///                                           session-ticket secret from (``TLSTicketKeys``)
/// ```
struct WorkerEnvironment: Sendable {
    static let markerKey = "POSTERN_WORKER"
    static let listenersKey = "POSTERN_WORKER_LISTENERS"
    static let statsKey = "POSTERN_WORKER_STATS"
    static let masterKey = "POSTERN_WORKER_MASTER"

    let slot: Int
    let listeners: [InheritedListeners.Listener]
    let statsDirectory: String
    /// The master's pid, when it said.
    let master: Int32?

    /// The marker in `environment`, or `nil` in a process that is no worker.
    init?(_ environment: [String: String]) {
        guard let slotText = environment[Self.markerKey], let slot = Int(slotText),
            let listenersText = environment[Self.listenersKey], let stats = environment[Self.statsKey]
        else { return nil }
        guard let listeners = InheritedListeners.decode(listenersText) else { return nil }
        self.slot = slot
        self.listeners = listeners
        self.statsDirectory = stats
        self.master = environment[Self.masterKey].flatMap { Int32($0) }
    }

    /// The variables to add to a worker's environment.
    static func variables(slot: Int, listeners: [InheritedListeners.Listener], statsDirectory: String, ticketSecret: Int32? = nil) -> [String: String] {
        var variables = [
            markerKey: String(slot),
            listenersKey: InheritedListeners.encode(listeners),
            statsKey: statsDirectory,
            masterKey: String(getpid()),
        ]
        if let ticketSecret { variables[TLSTicketKeys.environmentKey] = String(ticketSecret) }
        return variables
    }
}
