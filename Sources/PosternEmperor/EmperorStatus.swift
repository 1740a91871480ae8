import FoundationEssentials
import PosternCore

/// The emperor's status page (`--status ADDR`): the emperor, and each app as the emperor
/// manages it. Times are Unix seconds.
package struct EmperorStatus: Codable, Sendable, Equatable {
    package var mode = "emperor"
    package var pid: Int32
    package var directory: String
    package var startTime: Int
    package var apps: [App]

    package struct App: Codable, Sendable, Equatable {
        package var name: String
        /// `starting`, `ready`, `reloading`, `backoff`, `config_error` or `stopping`.
        package var state: String
        package var pid: Int32?
        /// Each start and each reload.
        package var generation: Int
        /// Exits nobody asked for.
        package var restarts: Int
        /// Quick exits in a row, which the backoff counts.
        package var crashes: Int
        /// While in `backoff`: when the next start is due.
        package var nextAttempt: Double?
        /// Why the newest file is not what runs.
        package var configError: String?
        package var lastExit: String?
        /// FNV-1a of the file that runs (or is to start).
        package var configHash: String?
        package var exec: String?
        package var startedAt: Double?
        package var readyAt: Double?
        package var onDemand: Bool
        /// On demand: starts made by a connection, the last one's wait (the connection seen
        /// to the app's READY=1), and the stops by its own `idle-exit`.
        package var coldStarts: Int
        package var lastColdStartMilliseconds: Double?
        package var idleExits: Int
        /// The sockets the emperor holds for it, and the connections waiting in each.
        package var listeners: [Listener]

        enum CodingKeys: String, CodingKey {
            case name, state, pid, generation, restarts, crashes
            case nextAttempt = "next_attempt"
            case configError = "config_error"
            case lastExit = "last_exit"
            case configHash = "config_hash"
            case exec
            case startedAt = "started_at"
            case readyAt = "ready_at"
            case onDemand = "on_demand"
            case coldStarts = "cold_starts"
            case lastColdStartMilliseconds = "last_cold_start_ms"
            case idleExits = "idle_exits"
            case listeners
        }
    }

    package struct Listener: Codable, Sendable, Equatable {
        package var `protocol`: String
        package var address: String
        package var queued: Int
        package var length: Int
    }

    enum CodingKeys: String, CodingKey {
        case mode, pid, directory
        case startTime = "start_time"
        case apps
    }
}

/// The status page's application: the JSON at `/` and `/status`.
package struct EmperorStatusApplication: Application {
    let source: @Sendable () -> EmperorStatus

    package init(source: @escaping @Sendable () -> EmperorStatus) { self.source = source }

    package func respond(to environ: Environ) async throws -> Response {
        switch environ.pathInfo {
        case "/", "/status", "":
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let body = (try? encoder.encode(source())).map { Array($0) } ?? Array("{}".utf8)
            return Response(status: .ok, headers: ["Content-Type": "application/json"], body: ResponseBody(bytes: body))
        default:
            return .error(.notFound)
        }
    }
}
