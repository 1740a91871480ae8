import FoundationEssentials

/// `postern top` on an emperor's status page (`postern emperor --status`, docs/emperor.md): a
/// line per app. Pure: the page's JSON in, text out, read through the fields it shows.
public struct EmperorTop: Sendable {
    struct Document: Decodable, Sendable {
        struct Listener: Decodable, Sendable {
            var queued: Int
        }
        struct App: Decodable, Sendable {
            var name: String
            var state: String
            var pid: Int32?
            var generation: Int
            var restarts: Int
            var coldStarts: Int
            var lastColdStartMs: Double?
            var uid: Int?
            var requests: Int?
            var errors: Int?
            var workersBusy: Int?
            var workersIdle: Int?
            var configError: String?
            var listeners: [Listener]
        }
        var mode: String
        var pid: Int32
        var directory: String
        var apps: [App]
    }

    let document: Document

    /// Reads an emperor's page; throws when the JSON is not one.
    public init(json: Data) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        document = try decoder.decode(Document.self, from: json)
        guard document.mode == "emperor" else { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not an emperor")) }
    }

    /// The screen: a summary by state, then a line per app (and its configuration error, if any).
    public var text: String {
        let d = document
        var counts: [String: Int] = [:]
        for app in d.apps { counts[app.state, default: 0] += 1 }
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        var lines = [
            "postern emperor pid \(d.pid), \(d.directory): \(d.apps.count) app\(d.apps.count == 1 ? "" : "s")\(summary.isEmpty ? "" : " (\(summary))")", "",
        ]
        let widths = [18, 13, 8, 5, 10, 7, 10, 9, 6, 10, 7, 7]
        lines.append(
            StatusTop.row(
                ["APP", "STATE", "PID", "GEN", "REQUESTS", "5XX", "BUSY/IDLE", "RESTARTS", "COLD", "LAST COLD", "QUEUED", "UID"], widths: widths))
        for app in d.apps {
            let workers = app.pid == nil ? "-" : "\(app.workersBusy ?? 0)/\(app.workersIdle ?? 0)"
            lines.append(
                StatusTop.row(
                    [
                        app.name, app.state, app.pid.map(String.init) ?? "-", String(app.generation), String(app.requests ?? 0),
                        String(app.errors ?? 0), workers, String(app.restarts), String(app.coldStarts),
                        app.lastColdStartMs.map { StatusTop.fixed($0, 1) + " ms" } ?? "-", String(app.listeners.reduce(0) { $0 + $1.queued }),
                        app.uid.map(String.init) ?? "-",
                    ], widths: widths))
            if let error = app.configError { lines.append("  \(app.name): \(error.prefix(200))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
