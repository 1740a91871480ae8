/// A Postern backend process for the live front-end tests.
import Foundation
import Postern
import PosternCore
import PosternFrontEnds

/// A Postern backend process (`postern serve` or an example binary) for the live front-end tests.
public final class Backend: @unchecked Sendable {
    public let process: ManagedProcess
    public let port: Int?
    public let socketPath: String?

    /// - Parameter host: where `port` listens (127.0.0.2 and .3 stand for other hosts).
    public init(
        binary: String = "postern", arguments: [String], port: Int? = nil, host: String = "127.0.0.1", socketPath: String? = nil, directory: String,
        name: String = "backend"
    ) async throws {
        self.process = try ManagedProcess(
            name: "\(name)-\(host)-\(port ?? 0)", executable: Paths.binary(binary), arguments: arguments,
            // As root on CI: allowed, as a sysadmin would not (they give --user).
            environment: ["PATH": "/usr/bin:/bin", "POSTERN_ALLOW_ROOT": "true"], directory: directory
        )
        self.port = port
        self.socketPath = socketPath
        if let port { try await Wait.forPort(port, host: host) }
        if let socketPath { try await Wait.forSocket(socketPath) }
    }

    /// `postern serve --app APP` with `--fastcgi/--scgi/--uwsgi 127.0.0.1:PORT` on a free port.
    public static func serve(app: String, protocol kind: ListenerProtocol, directory: String, extra: [String] = []) async throws -> Backend {
        let port = try Ports.free()
        return try await Backend(
            arguments: ["serve", "--app", app, "--\(kind.rawValue)", "127.0.0.1:\(port)", "--log-level", "warning"] + extra, port: port, directory: directory)
    }

    public func stop() { process.stop() }

    deinit { process.stop() }
}
