import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A real nginx for interop tests: started in the foreground (`daemon off; master_process off`)
/// from a generated configuration in a fresh temporary directory, listening on a unix socket
/// there (no port to race for), and always stopped by ``withNginx(http:_:)``.
public enum NginxProcess {
    public static let binary = "/usr/sbin/nginx"

    /// Whether nginx is installed here.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    /// Runs nginx with `server` (the body of an `http { server { … } }` block, without `listen`)
    /// and gives `body` the address of its unix socket; stops nginx afterwards, even on failure.
    public static func withNginx<T: Sendable>(server: String, _ body: (SocketAddress) async throws -> T) async throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("postern-nginx-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let dir = directory.path
        let socket = "\(dir)/nginx.sock"
        let config = """
            daemon off;
            master_process off;
            worker_processes 1;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log info;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(dir)/body;
                proxy_temp_path \(dir)/proxy;
                fastcgi_temp_path \(dir)/fastcgi;
                uwsgi_temp_path \(dir)/uwsgi;
                scgi_temp_path \(dir)/scgi;
                client_max_body_size 64m;
                server {
                    listen unix:\(socket);
                    \(server)
                }
            }
            """
        try config.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-p", dir, "-c", "\(dir)/nginx.conf", "-e", "\(dir)/error.log"]
        try process.run()
        do {
            let result = try await serve(process: process, socket: socket, dir: dir, body)
            await stop(process)
            return result
        } catch {
            await stop(process)
            throw error
        }
    }

    /// Stops nginx with SIGKILL and waits for it to exit.
    ///
    /// Not SIGTERM: a child started by `Process` inherits the test process's signal mask, in
    /// which SIGTERM and SIGQUIT are blocked, and a `master_process off` nginx never unblocks
    /// them (measured: SigBlk fffffffe3bfbea27 in /proc/PID/status). That single nginx process
    /// has no children and nothing to flush, so SIGKILL loses nothing.
    static func stop(_ process: Process) async {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<100 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private static func serve<T: Sendable>(process: Process, socket: String, dir: String, _ body: (SocketAddress) async throws -> T) async throws -> T {
        let address = try SocketAddress(unixDomainSocketPath: socket)
        // Ready when its socket accepts a connection (at most 10 s).
        var ready = false
        for _ in 0..<200 where process.isRunning {
            if FileManager.default.fileExists(atPath: socket),
                let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: address).get()
            {
                try? await channel.close()
                ready = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard ready else {
            let log = (try? String(contentsOfFile: "\(dir)/error.log", encoding: .utf8)) ?? ""
            throw TestFailure("nginx did not start: \(log)")
        }
        do {
            return try await body(address)
        } catch {
            let log = (try? String(contentsOfFile: "\(dir)/error.log", encoding: .utf8)) ?? ""
            throw TestFailure("\(error)\nnginx error.log:\n\(log)")
        }
    }
}
