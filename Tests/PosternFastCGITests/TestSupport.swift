// Helpers for the FastCGI tests: a probe application, a live server on port 0, process tools.
import Foundation
import Logging
import NIOCore
import NIOPosix
import Postern
import PosternCore
import PosternEngine
import PosternFastCGI
import Synchronization
import Testing

/// An application whose behaviour the test picks by PATH_INFO.
struct ProbeApp: Application {
    /// Set when a `/slow` request was cancelled (ABORT_REQUEST reached the app).
    let cancellations = Counter()
    /// Application calls (and response streams) still running.
    let live = Counter()

    func respond(to environ: Environ) async throws -> Response {
        live.increment()
        defer { live.decrement() }
        switch environ.pathInfo {
        case "/environ":
            let lines = environ.variables.keys.sorted().map { "\($0)=\(environ[$0] ?? "")" }
            return .text(lines.joined(separator: "\n") + "\n")
        case "/echo":
            let body = environ.body
            let live = self.live
            let cancellations = self.cancellations
            live.increment()
            return Response(
                status: .ok, headers: ["Content-Type": "application/octet-stream"],
                body: .stream { writer in
                    defer { live.decrement() }
                    do {
                        for try await chunk in body { try await writer.write(chunk) }
                    } catch {
                        cancellations.increment()
                        throw error
                    }
                })
        case "/drip":
            // A response that never ends by itself: a chunk every 20 ms until cancelled.
            let live = self.live
            let cancellations = self.cancellations
            live.increment()
            return Response(
                status: .ok, headers: ["Content-Type": "text/plain"],
                body: .stream { writer in
                    defer { live.decrement() }
                    do {
                        while true {
                            try await writer.write(ByteBuffer(string: "drip\n"))
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    } catch {
                        cancellations.increment()
                        throw error
                    }
                })
        case "/read":
            let body = try await environ.body.collect(upTo: 1 << 30)
            return .text("read \(body.readableBytes)\n")
        case "/stderr":
            environ.errors.write("probe: something to log")
            return .text("logged\n")
        case "/slow":
            do {
                try await Task.sleep(for: .seconds(30))
            } catch {
                cancellations.increment()
                throw error
            }
            return .text("slept\n")
        case "/big":
            let size = Int(environ.queryString) ?? 0
            return Response(
                status: .ok, headers: ["Content-Type": "application/octet-stream"],
                body: .stream(length: size) { writer in
                    var left = size
                    var counter: UInt8 = 0
                    while left > 0 {
                        let n = min(left, 10_000)
                        var chunk = ByteBuffer()
                        for _ in 0..<n {
                            chunk.writeInteger(counter)
                            counter &+= 1
                        }
                        try await writer.write(chunk)
                        left -= n
                    }
                })
        case "/filter":
            guard let data = environ.filterData else { return .text("no filter data\n", status: .init(code: 500)) }
            let body = try await environ.body.collect(upTo: 1 << 20)
            let file: ByteBuffer
            do {
                file = try await data.collect(upTo: 1 << 20)
            } catch {
                cancellations.increment()
                throw error
            }
            let text =
                "stdin=\(String(buffer: body)) data=\(String(buffer: file).uppercased()) length=\(environ["FCGI_DATA_LENGTH"] ?? "-") lastmod=\(environ["FCGI_DATA_LAST_MOD"] ?? "-")\n"
            return .text(text)
        case "/auth":
            if environ["HTTP_AUTHORIZATION"] == "Bearer ok" {
                return Response(status: .ok, headers: ["Variable-AUTH_USER": "alice", "Variable-AUTH_ROLE": environ["FCGI_APACHE_ROLE"] ?? "-"])
            }
            return .text("denied\n", status: .init(code: 403))
        case "/id":
            return .text("id=\(environ.queryString)\n")
        default:
            return .text("not found\n", status: .init(code: 404))
        }
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { value.withLock { $0 += 1 } }
    func decrement() { value.withLock { $0 -= 1 } }
    var count: Int { value.withLock { $0 } }
}

/// Runs a GatewayServer with `listeners` until `body` returns, then cancels it.
func withServer<T: Sendable>(
    _ listeners: [ListenerSpec] = [ListenerSpec(.fastcgi, .tcp(host: "127.0.0.1", port: 0))],
    app: any Application = ProbeApp(),
    limits: GatewayLimits = GatewayLimits(),
    _ body: @Sendable ([SocketAddress?]) async throws -> T
) async throws -> T {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let configuration = GatewayConfiguration(application: app, limits: limits, logger: logger)
    let (ready, readyContinuation) = AsyncStream.makeStream(of: [SocketAddress?].self)
    let server = GatewayServer(listeners: listeners, configuration: configuration) { addresses in
        readyContinuation.yield(addresses)
        readyContinuation.finish()
    }
    let task = Task { try await server.run() }
    defer { task.cancel() }
    var iterator = ready.makeAsyncIterator()
    guard let addresses = await iterator.next() else {
        _ = try await task.value
        throw TestFailure("server did not start")
    }
    let result = try await body(addresses)
    task.cancel()
    // A server that does not stop is a failure, not a test process that waits forever (a request
    // task stuck for good keeps its connection, and the server, from ending).
    let (outcome, continuation) = AsyncStream<Bool>.makeStream()
    Task {
        _ = try? await task.value
        continuation.yield(true)
    }
    let timer = Task {
        try? await Task.sleep(for: .seconds(30))
        continuation.yield(false)
    }
    var first = outcome.makeAsyncIterator()
    let stopped = await first.next() ?? false
    timer.cancel()
    guard stopped else { throw TestFailure("the server had not stopped 30 s after its cancellation") }
    return result
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Optional where Wrapped == SocketAddress {
    /// The endpoint of a TCP listener's bound address.
    var endpoint: FastCGIClient.Endpoint {
        get throws {
            guard let self, let port = self.port else { throw TestFailure("no bound address") }
            return .tcp(host: "127.0.0.1", port: port)
        }
    }
}

/// Connects a client to the first listener.
func connect(_ addresses: [SocketAddress?]) async throws -> FastCGIClient {
    try await FastCGIClient.connect(to: addresses[0].endpoint)
}

enum Paths {
    /// The package root, from this file's path.
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var fixtures: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures") }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("postern-fcgi-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs a program to completion with `stdin` bytes and an environment; returns stdout, stderr and
/// status. The blocking waits run on a Dispatch thread: the cooperative pool has only as many
/// threads as cores (two here), and the server under test needs them.
func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:], stdin: Data = Data()) async throws -> (
    stdout: Data, stderr: Data, status: Int32
) {
    try await offPool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var err = Data()
        DispatchQueue.global().async(group: group) { err = errors.fileHandleForReading.readDataToEndOfFile() }
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (out, err, process.terminationStatus)
    }
}

/// Runs blocking work on a Dispatch thread.
func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// Stops a process this test started: SIGTERM, then SIGKILL after two seconds (libfcgi only
/// notes SIGTERM and keeps blocking in accept), waiting off the cooperative pool.
func stop(_ process: Process) async {
    if process.isRunning { process.terminate() }
    for _ in 0..<20 where process.isRunning {
        try? await Task.sleep(for: .milliseconds(100))
    }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    _ = try? await offPool { process.waitUntilExit() }
}

/// A TCP socket bound to 127.0.0.1 on a free port and listening: what a process manager hands
/// a FastCGI app as fd 0.
func makeListeningSocket() throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket() failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 64) == 0 else {
        close(fd)
        throw TestFailure("bind/listen failed")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Retries `body` until it succeeds or `seconds` pass (a spawned process takes a moment to accept).
func eventually<T>(seconds: Double = 10, _ body: () async throws -> T) async throws -> T {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while true {
        do {
            return try await body()
        } catch {
            if ContinuousClock.now > deadline { throw error }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// A byte buffer from hex text (spaces ignored).
func bytes(_ hex: String) -> ByteBuffer {
    let digits = hex.filter { !$0.isWhitespace }
    var buffer = ByteBuffer()
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        buffer.writeInteger(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return buffer
}
