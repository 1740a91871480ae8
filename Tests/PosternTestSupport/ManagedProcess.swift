import Foundation
import NIOPosix
import Postern
import PosternCore

/// A child process a live test starts (a front-end, a backend): its output goes to files in the
/// test's directory, and ``stop()`` ends it (SIGTERM, then SIGKILL) even when a check failed.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    public let process = Process()
    public let logPath: String

    public init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil, directory: String) throws {
        self.name = name
        self.logPath = directory + "/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var isRunning: Bool { process.isRunning }

    /// What the process printed.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Waiting for listeners to come up, on a thread of its own (the cooperative pool is not blocked).
public enum Wait {
    /// Waits until something accepts TCP connections on `port`.
    public static func forPort(_ port: Int, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let fd = try? RawClient.connectTCP(port: port) {
                close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServeError("nothing listens on port \(port) after \(timeout) s")
    }

    /// Waits until `path` is a socket file.
    public static func forSocket(_ path: String, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServeError("no socket at \(path) after \(timeout) s")
    }
}

/// Free loopback ports, picked by binding port 0.
public enum Ports {
    public static func free() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Where the package and its built binaries are.
public enum Paths {
    /// The package root, found from this file's path.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The built executables (`swift build` puts them in .build/debug); POSTERN_BIN_DIR overrides.
    public static var binDirectory: String {
        ProcessInfo.processInfo.environment["POSTERN_BIN_DIR"] ?? root + "/.build/debug"
    }

    public static func binary(_ name: String) -> String { binDirectory + "/" + name }

    /// A fresh directory for one test's files, traversable by the front-ends' users (www-data).
    public static func makeTestDirectory(_ label: String) throws -> String {
        let path = "/tmp/postern-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return path
    }
}
