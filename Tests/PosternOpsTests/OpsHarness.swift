import Foundation
import NIOPosix
import PosternTestSupport
import Testing

/// The live operations tests, one suite at a time: each starts real servers, workers and load,
/// and two at once on two cores starve each other's timing (as the hardening tests do).
@Suite(.serialized) enum Ops {}

/// A `postern serve --app ops` process for one test, and the HTTP requests the tests send it.
struct OpsServer {
    let process: ManagedProcess
    let port: Int
    let statusPort: Int
    let directory: String

    /// Starts `postern serve --app ops` with `arguments`; `wrapper` (say `prlimit --nofile=64`)
    /// runs it, when given.
    static func start(
        _ label: String, _ arguments: [String], statusPort: Bool = true, wrapper: [String] = [], binary: String? = nil,
        environment: [String: String]? = nil
    ) async throws -> OpsServer {
        let directory = try Paths.makeTestDirectory(label)
        let port = try Ports.free()
        let status = try Ports.free()
        var args = ["serve", "--app", "ops", "--http", "127.0.0.1:\(port)", "--log-level", "info"] + arguments
        if statusPort { args += ["--status", "127.0.0.1:\(status)"] }
        let binary = binary ?? Paths.binary("postern")
        let process = try ManagedProcess(
            name: "postern", executable: wrapper.first ?? binary, arguments: wrapper.isEmpty ? args : Array(wrapper.dropFirst()) + [binary] + args,
            environment: environment, directory: directory)
        try await Wait.forPort(port)
        if statusPort { try await Wait.forPort(status) }
        return OpsServer(process: process, port: port, statusPort: status, directory: directory)
    }

    /// One GET on a fresh connection: the status code, 0 when the exchange failed.
    func get(_ target: String) async -> (status: Int, body: String) {
        await Self.get(port: port, target)
    }

    /// Blocking clients run here, enough threads for the tests' concurrent requests.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    static func get(port: Int, _ target: String) async -> (status: Int, body: String) {
        let request = Array("GET \(target) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8)
        let bytes = try? await pool.runIfActive {
            let fd = try BlockingClient.connectTCP(port: port)
            defer { close(fd) }
            // A request that is never answered fails after 30 s instead of holding the test.
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            try BlockingClient.sendAll(fd, request)
            return BlockingClient.readAll(fd)
        }
        guard let bytes,
            let response = try? ParsedResponse.parseAll(bytes).first
        else { return (0, "") }
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    /// The status endpoint's JSON.
    func status() async throws -> [String: Any] {
        let (code, body) = await Self.get(port: statusPort, "/")
        guard code == 200, let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw TestFailure("status endpoint answered \(code): \(body)")
        }
        return object
    }

    /// The worker pids the status endpoint lists, but those still starting (spawned, not yet
    /// listening: not serving, not yet handling signals).
    func workerPIDs() async throws -> Set<Int> {
        let workers = try await status()["workers"] as? [[String: Any]] ?? []
        return Set(workers.filter { $0["state"] as? String != "starting" }.compactMap { $0["pid"] as? Int })
    }

    func signal(_ number: Int32) { kill(process.pid, number) }

    func waitForExit(seconds: Double) async -> Int32? { await process.waitForExit(seconds: seconds) }
}

/// Continuous load: `clients` loops of GETs on fresh connections until stopped; counts sent and
/// failed (anything but 200).
final class Load: @unchecked Sendable {
    private let lock = NSLock()
    private var sentCount = 0
    private var failedCount = 0
    private var failures: [String] = []
    private var stopped = false
    private var tasks: [Task<Void, Never>] = []

    init(port: Int, clients: Int, target: String = "/hello", limit: Int = .max) {
        for _ in 0..<clients {
            tasks.append(
                Task {
                    while true {
                        let go: Bool = self.lock.withLock {
                            guard !self.stopped, self.sentCount < limit else { return false }
                            self.sentCount += 1
                            return true
                        }
                        guard go else { return }
                        let (status, body) = await OpsServer.get(port: port, target)
                        if status != 200 {
                            self.lock.withLock {
                                self.failedCount += 1
                                if self.failures.count < 5 { self.failures.append("\(status) \(body)") }
                            }
                        }
                    }
                })
        }
    }

    /// Stops and waits for the clients; (sent, failed, first failures).
    func finish() async -> (sent: Int, failed: Int, examples: [String]) {
        lock.withLock { stopped = true }
        for task in tasks { await task.value }
        return lock.withLock { (sentCount, failedCount, failures) }
    }

    /// Waits until the clients have sent everything they may.
    func drain() async -> (sent: Int, failed: Int, examples: [String]) {
        for task in tasks { await task.value }
        return lock.withLock { (sentCount, failedCount, failures) }
    }

    var sent: Int { lock.withLock { sentCount } }
}

/// Whether `condition` holds within `seconds`, checked every 100 ms (a server logs, writes and
/// starts workers a moment after it answers).
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return try await condition()
}

/// Runs a program to its end: its exit status and what it printed (standard output and error).
func runToEnd(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
