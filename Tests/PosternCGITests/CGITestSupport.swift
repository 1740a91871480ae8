// Test helpers: the built executables, a clean child environment, a live server, a raw HTTP client.
import Foundation
import Logging
import NIOCore
import NIOPosix
import Postern
import PosternCGI
import PosternCGIHost
import PosternClient
import PosternCore
import PosternEngine

enum TestPaths {
    /// The directory of the built products (.build/debug): POSTERN_BUILD_DIR, or the directory of
    /// the test bundle, which SwiftPM puts beside the executables.
    static var buildDirectory: String {
        if let given = ProcessInfo.processInfo.environment["POSTERN_BUILD_DIR"] { return given }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" && !url.lastPathComponent.hasSuffix(".xctest")
            && !FileManager.default.fileExists(atPath: url.appendingPathComponent("hello").path)
        {
            url.deleteLastPathComponent()
        }
        if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
        return url.path
    }

    static func executable(_ name: String) throws -> String {
        let path = buildDirectory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(path) is not built: run `swift build` before `swift test` (or set POSTERN_BUILD_DIR)")
        }
        return path
    }

    /// examples/cgi-bin in the source tree.
    static var scriptsDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/cgi-bin").path
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs a program to completion with exactly `environment`, `arguments` and `stdin`.
func runProgram(_ path: String, arguments: [String] = [], environment: [String: String], stdin: [UInt8] = []) async throws -> (
    stdout: [UInt8], stderr: String, status: Int32
) {
    try await onOwnThread {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let writer = Thread {
            try? input.fileHandleForWriting.write(contentsOf: Data(stdin))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let errorData = LockedBox(Data())
        let errorReader = Thread { errorData.value = errors.fileHandleForReading.readDataToEndOfFile() }
        errorReader.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errorReader.isExecuting || !errorReader.isFinished { usleep(1000) }
        return (Array(data), String(decoding: errorData.value, as: UTF8.self), process.terminationStatus)
    }
}

/// Runs blocking work on a thread of its own: tests block on sockets and pipes, and a shared
/// pool of two threads would make parallel tests wait on each other.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
    func withLockedValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try lock.withLock { try body(&stored) }
    }
}

/// Collects what the application wrote to its error stream.
final class ErrorLog: Sendable {
    private let lines = LockedBox<[String]>([])
    var stream: ErrorStream { ErrorStream { [lines] line in lines.withLockedValue { $0.append(line) } } }
    var all: [String] { lines.withLockedValue { $0 } }

    /// Whether a line matching `predicate` arrives within `seconds`: a script's stderr is read
    /// beside its stdout, so its lines may reach the log just after the response is complete.
    func eventuallyContains(seconds: Double = 10, _ predicate: (String) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if all.contains(where: predicate) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return all.contains(where: predicate)
    }
}

/// An Application that forwards to another with the given error stream (the HTTP adapter's
/// stream goes to the log; tests want to read it).
struct CapturingErrors: Application {
    let inner: any Application
    let log: ErrorLog
    func respond(to environ: Environ) async throws -> Response {
        var environ = environ
        environ.errors = log.stream
        return try await inner.respond(to: environ)
    }
}

/// A GatewayServer with one HTTP listener on 127.0.0.1 port 0, for one test.
struct LiveServer {
    let port: Int
    let task: Task<Void, any Error>

    static func start(_ app: any Application, listenerProtocol: ListenerProtocol = .http) async throws -> LiveServer {
        var logger = Logger(label: "cgi-test")
        logger.logLevel = .critical
        let configuration = GatewayConfiguration(application: app, logger: logger)
        let (stream, continuation) = AsyncStream<[SocketAddress?]>.makeStream()
        let server = GatewayServer(listeners: [ListenerSpec(listenerProtocol, .tcp(host: "127.0.0.1", port: 0))], configuration: configuration) {
            continuation.yield($0)
        }
        let task = Task { try await server.run() }
        var iterator = stream.makeAsyncIterator()
        guard let addresses = await iterator.next(), let port = addresses.first??.port else { throw TestFailure("server did not start") }
        return LiveServer(port: port, task: task)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }

    /// Starts a host over `root` with `adjust` applied to its configuration, runs `body`, stops.
    static func withHost<T>(
        root: String = TestPaths.scriptsDirectory,
        gatewayEnvironment: [String: String] = [:],
        log: ErrorLog = ErrorLog(),
        listenerProtocol: ListenerProtocol = .http,
        _ adjust: (inout CGIScriptHostConfiguration) -> Void = { _ in },
        _ body: (LiveServer) async throws -> T
    ) async throws -> T {
        var configuration = CGIScriptHostConfiguration(root: root)
        configuration.timeoutSeconds = 20
        adjust(&configuration)
        let host = try CGIScriptHost(configuration: configuration, gatewayEnvironment: gatewayEnvironment)
        let server = try await start(CapturingErrors(inner: host, log: log), listenerProtocol: listenerProtocol)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// An HTTP/1.1 response as the client saw it: chunked bodies decoded.
struct ClientResponse {
    var status: Int
    var reason: String
    var headers: [(String, String)]
    var body: [UInt8]
    /// A chunked body ended with its last chunk (RFC 9112 §7.1); nil when not chunked.
    var chunkedComplete: Bool? = nil
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// A blocking raw client (run off the cooperative pool): exact bytes out, everything read to EOF.
enum RawHTTP {
    static func get(_ port: Int, _ target: String, headers: [String] = []) async throws -> ClientResponse {
        try await send(port, head: "GET \(target) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    static func post(_ port: Int, _ target: String, body: [UInt8], contentType: String = "application/octet-stream") async throws -> ClientResponse {
        try await send(
            port,
            head: "POST \(target) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n",
            body: body)
    }

    static func send(_ port: Int, head: String, body: [UInt8] = [], onRead: (@Sendable ([UInt8]) -> Void)? = nil) async throws -> ClientResponse {
        let raw = try await onOwnThread { () throws -> [UInt8] in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var timeout = timeval(tv_sec: 30, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw TestFailure("connect failed: errno \(errno)") }
            for bytes in [Array(head.utf8), body] {
                var offset = 0
                while offset < bytes.count {
                    let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard sent > 0 else { throw TestFailure("send failed: errno \(errno)") }
                    offset += sent
                }
            }
            var result: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if got <= 0 { break }
                result += buffer[..<got]
                onRead?(result)
            }
            return result
        }
        return try parse(raw)
    }

    static func parse(_ raw: [UInt8]) throws -> ClientResponse {
        guard let end = raw.indices.first(where: { raw[$0...].starts(with: Array("\r\n\r\n".utf8)) }) else {
            throw TestFailure("no complete response head in \(String(decoding: raw, as: UTF8.self))")
        }
        let lines = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2).map(String.init)
        var headers: [(String, String)] = []
        for line in lines.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            headers.append((parts[0], parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""))
        }
        var body = Array(raw[(end + 4)...])
        var response = ClientResponse(status: Int(statusParts[1]) ?? 0, reason: statusParts.count > 2 ? statusParts[2] : "", headers: headers, body: body)
        if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
            var decoded: [UInt8] = []
            response.chunkedComplete = false
            while let lineEnd = body.indices.first(where: { body[$0...].starts(with: [13, 10]) }) {
                let size = Int(String(decoding: body[..<lineEnd], as: UTF8.self), radix: 16) ?? 0
                if size == 0 {
                    response.chunkedComplete = true
                    break
                }
                guard lineEnd + 4 + size <= body.count else {
                    decoded += body[(lineEnd + 2)...]  // a chunk cut off
                    break
                }
                decoded += body[(lineEnd + 2)..<(lineEnd + 2 + size)]
                body = Array(body[(lineEnd + 4 + size)...])
            }
            response.body = decoded
        }
        return response
    }
}

/// The environment-dump lines of env.sh as a dictionary.
func parseEnvDump(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let equals = line.firstIndex(of: "=") else { continue }
        let name = String(line[..<equals])
        if name == "ARG" { continue }
        result[name] = String(line[line.index(after: equals)...])
    }
    return result
}

/// Child processes of this process that are zombies (exited, not reaped).
func zombieChildren() -> [Int32] {
    let me = getpid()
    var zombies: [Int32] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { continue }
        guard let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 1, fields[0] == "Z", Int32(fields[1]) == me { zombies.append(pid) }
    }
    return zombies
}

/// Zombie children that stay zombies for a second: a child seen between its exit and its reaping
/// (ours polls waitpid, Foundation's Process reaps asynchronously) is not a leak.
func lingeringZombies() async throws -> [Int32] {
    let first = Set(zombieChildren())
    guard !first.isEmpty else { return [] }
    try await Task.sleep(for: .seconds(1))
    return zombieChildren().filter(first.contains)
}

/// Processes whose process group is `group`.
func processes(inGroup group: Int32) -> [Int32] {
    var members: [Int32] = []
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8) else { continue }
        guard let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 2, Int32(fields[2]) == group { members.append(pid) }
    }
    return members
}
