/// Waiting for a started process's listener (TCP port or unix socket) to come up.
import Foundation

/// Waiting for listeners to come up, on a thread of its own (the cooperative pool is not blocked).
public enum Wait {
    /// Waits until something accepts TCP connections on `host`:`port`.
    public static func forPort(_ port: Int, host: String = "127.0.0.1", timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let fd = LoopbackProbe.connect(port: port, host: host) {
                close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FrontEndError.notListening(port: port, seconds: timeout)
    }

    /// Waits until `path` is a socket file.
    public static func forSocket(_ path: String, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var info = stat()
            if stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw FrontEndError.noSocket(path: path, seconds: timeout)
    }
}
