import FoundationEssentials
import PosternCore
import Prometheus

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
        /// Tyrant mode: the uid it runs as (its file's owner).
        package var uid: Int?
        /// Requests it answered and those with a 5xx status, over every process it has had
        /// under this emperor (from its reports, once a second: ``AppTally``).
        package var requests: Int
        package var errors: Int
        /// Its requests in flight, and its workers with and without one (0 without a process).
        package var inFlight: Int
        package var workersBusy: Int
        package var workersIdle: Int
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
            case uid
            case requests, errors
            case inFlight = "in_flight"
            case workersBusy = "workers_busy"
            case workersIdle = "workers_idle"
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

extension EmperorStatus {
    /// The states an app can be in, each a label value of `postern_emperor_apps`.
    static let states = ["starting", "ready", "reloading", "idle", "backoff", "config_error", "stopping"]

    /// The page in the Prometheus text format (`/metrics`): how many apps are in each state, and
    /// per app (label `app`) whether it runs, its restarts, generation, cold starts and the last
    /// one's wait, idle exits, requests, 5xx responses, requests in flight, workers busy and
    /// idle, and the connections waiting on each of its sockets.
    func prometheus() -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        func metric(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "postern_emperor", metricName: name, unitName: unit, helpText: help)
        }
        for state in Self.states {
            registry.makeGauge(descriptor: metric("apps", "", "Apps, by state."), labels: [("state", state)]).set(
                Double(apps.filter { $0.state == state }.count))
        }
        for app in apps {
            let labels = [("app", app.name)]
            registry.makeGauge(descriptor: metric("app_up", "", "1 while the app has a process, 0 without one."), labels: labels).set(
                app.pid == nil ? 0.0 : 1.0)
            registry.makeCounter(descriptor: metric("app_restarts", "total", "Exits of the app nobody asked for."), labels: labels).increment(
                by: Int64(app.restarts))
            registry.makeGauge(descriptor: metric("app_generation", "", "The app's starts and reloads."), labels: labels).set(Double(app.generation))
            registry.makeCounter(descriptor: metric("app_cold_starts", "total", "Starts of an on-demand app made by a connection."), labels: labels)
                .increment(by: Int64(app.coldStarts))
            registry.makeCounter(descriptor: metric("app_idle_exits", "total", "Stops of an on-demand app by its idle-exit."), labels: labels)
                .increment(by: Int64(app.idleExits))
            if let milliseconds = app.lastColdStartMilliseconds {
                registry.makeGauge(
                    descriptor: metric("app_last_cold_start", "seconds", "The last cold start: the connection seen to the app's READY=1."), labels: labels
                ).set(milliseconds / 1000)
            }
            registry.makeCounter(descriptor: metric("app_requests", "total", "Requests the app answered, over its processes."), labels: labels)
                .increment(by: Int64(app.requests))
            registry.makeCounter(descriptor: metric("app_errors", "total", "The app's responses with a 5xx status."), labels: labels).increment(
                by: Int64(app.errors))
            registry.makeGauge(descriptor: metric("app_in_flight", "", "The app's requests in flight."), labels: labels).set(Double(app.inFlight))
            for (state, count) in [("busy", app.workersBusy), ("idle", app.workersIdle)] {
                registry.makeGauge(descriptor: metric("app_workers", "", "The app's serving workers, busy or idle."), labels: labels + [("state", state)])
                    .set(Double(count))
            }
            for listener in app.listeners {
                registry.makeGauge(
                    descriptor: metric("app_listen_queue", "", "Connections waiting in the app's socket, held by the emperor."),
                    labels: labels + [("protocol", listener.protocol), ("address", listener.address)]
                ).set(Double(listener.queued))
            }
        }
        return registry.emitToBuffer()
    }
}

/// The status page's application: the JSON at `/` and `/status`, Prometheus at `/metrics`.
package struct EmperorStatusApplication: Application {
    let source: @Sendable () -> EmperorStatus

    package init(source: @escaping @Sendable () -> EmperorStatus) { self.source = source }

    package func respond(to environ: Environ) async throws -> Response {
        switch environ.pathInfo {
        case "/metrics":
            return Response(
                status: .ok, headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"], body: ResponseBody(bytes: source().prometheus()))
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
