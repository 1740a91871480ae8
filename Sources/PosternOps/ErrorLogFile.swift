import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `--error-log PATH`: the server's own log lines (what goes to standard error by default)
/// appended to a file, one write(2) per line (O_APPEND: the workers of a master share it), and
/// opened again on SIGUSR1 like the access log (dup2(2) onto the same descriptor, so a line being
/// written goes to one file or the other).
package struct ErrorLogFile: TextOutputStream, Sendable {
    private final class Descriptor: Sendable {
        let path: String
        let fd: Int32
        init(path: String, fd: Int32) {
            self.path = path
            self.fd = fd
        }
    }

    private let descriptor: Descriptor

    package init(path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw PathError.cannotOpen(option: "--error-log", path: path, errno: errno) }
        descriptor = Descriptor(path: path, fd: fd)
    }

    package mutating func write(_ string: String) {
        var line = Array(string.utf8)
        line.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor.fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }  // a full disk: the line is lost, the server goes on
                offset += written
            }
        }
    }

    /// Opens the path again; false (and the old file kept) when it cannot.
    package func reopen() -> Bool {
        let fresh = open(descriptor.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fresh >= 0 else { return false }
        defer { close(fresh) }
        guard dup2(fresh, descriptor.fd) >= 0 else { return false }
        _ = fcntl(descriptor.fd, F_SETFD, FD_CLOEXEC)
        return true
    }

    /// The file of this process, once `Gateway.run` has opened it.
    package nonisolated(unsafe) static var current: ErrorLogFile?
}
