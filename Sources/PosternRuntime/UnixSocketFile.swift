#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Socket files for `unix:PATH` listeners: a stale file from a crashed run is removed, a live one
/// (another server listening) or a file that is not a socket is an error, and the new socket
/// gets its mode (0660 by default: a reachable FastCGI socket runs code as the app).
package enum UnixSocketFile {
    package struct Error: Swift.Error, CustomStringConvertible {
        package let description: String
    }

    /// Makes `path` free to bind: removes a stale socket file, refuses anything else.
    package static func prepare(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // nothing there
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw Error(description: "the file exists and is not a socket; refusing to replace it")
        }
        if isListening(path: path) {
            throw Error(description: "another process is listening on this socket")
        }
        guard unlink(path) == 0 || errno == ENOENT else {
            throw Error(description: "cannot remove the stale socket: \(String(cString: strerror(errno)))")
        }
    }

    /// Runs a bind with umask 0177, so the socket file is created 0600 and only then opened up to
    /// its configured mode by ``setMode(path:mode:)``: no window in which a more permissive umask
    /// lets another user connect (a reachable FastCGI socket runs code as the app). Listeners are
    /// bound at start-up, before any request is served, so the process-wide umask is briefly
    /// stricter for nothing else.
    package static func bindingPrivately<T>(_ bind: () async throws -> T) async throws -> T {
        let previous = umask(0o177)
        defer { umask(previous) }
        return try await bind()
    }

    /// ``bindingPrivately(_:)`` for a synchronous bind (the worker master's sockets).
    package static func bindingPrivately<T>(_ bind: () throws -> T) throws -> T {
        let previous = umask(0o177)
        defer { umask(previous) }
        return try bind()
    }

    package static func setMode(path: String, mode: UInt16) throws {
        guard chmod(path, mode_t(mode)) == 0 else {
            throw Error(description: "cannot set mode \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
    }

    private static func isListening(path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }
}

/// Whether a file descriptor is a listening socket, as libfcgi's `FCGX_IsCGI` asks of fd 0
/// (FastCGI 1.0 §2.2: FCGI_LISTENSOCK_FILENO).
public func isListeningSocket(_ fd: Int32) -> Bool {
    var accepting: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 else { return false }
    return accepting != 0
}

extension UnixSocketFile {
    /// Removes the socket file at shutdown (only if it is still a socket).
    package static func remove(path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return }
        unlink(path)
    }
}
