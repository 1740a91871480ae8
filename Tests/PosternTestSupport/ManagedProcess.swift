import Foundation
import NIOPosix
import Postern
import PosternCore

/// A child process a live test starts (a front-end, a backend): its output goes to a file in the
/// test's directory, and ``stop()`` ends it (SIGTERM, then SIGKILL) even when a check failed.
///
/// Spawned with `posix_spawn` and an empty signal mask: a child started by Foundation's `Process`
/// from a Swift test inherits a mask with SIGTERM blocked, and a front-end that ignores SIGTERM
/// would have to be killed, orphaning its own children.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    public let pid: pid_t
    public let logPath: String
    private var exited = false

    public init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil, directory: String) throws {
        self.name = name
        self.logPath = directory + "/\(name).log"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard result == 0 else { throw ServeError("cannot start \(executable): \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    public var isRunning: Bool {
        guard !exited else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { exited = true }
        return !exited
    }

    /// What the process printed.
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    public func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<100 where isRunning { usleep(50_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            exited = true
        }
    }

    deinit { stop() }
}

/// Waiting for listeners to come up, on a thread of its own (the cooperative pool is not blocked).
public enum Wait {
    /// Waits until something accepts TCP connections on `port`.
    public static func forPort(_ port: Int, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let fd = try? BlockingClient.connectTCP(port: port) {
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
