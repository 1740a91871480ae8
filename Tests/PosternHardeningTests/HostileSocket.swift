// Raw POSIX sockets for hostile clients: open many, send a fragment, half-close, watch for the close.
import Foundation
import NIOCore
import NIOPosix
import PosternTestSupport

enum HostileSocket {
    /// Runs blocking socket work on a thread of its own. Never block a cooperative thread: there
    /// are as many as cores (two here), and the in-process servers under test, their
    /// applications and every other test need them.
    static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result { try body() })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Raises the soft open-file limit to `wanted` (bounded by the hard limit); returns the
    /// soft limit now in force. Each idle connection costs two descriptors in this process
    /// (the client's and the in-process server's).
    @discardableResult
    static func raiseFileLimit(to wanted: rlim_t = 65536) -> rlim_t {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return limit.rlim_cur
    }

    /// A blocking TCP connection to 127.0.0.1:`port`, close-on-exec (a `postern` child spawned
    /// meanwhile must not keep it open), optionally from another loopback address.
    static func connect(port: Int, from source: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket failed: errno \(errno)") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw TestFailure("bind to \(source) failed: errno \(errno)")
            }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw TestFailure("connect to port \(port) failed: errno \(error)")
        }
        return fd
    }

    /// Idle connections and when the first of them began to open.
    struct IdleConnections: Sendable {
        var fds: [Int32]
        var openedAt: ContinuousClock.Instant
    }

    /// Opens `count` connections to 127.0.0.1:`port` and sends `fragment` on each.
    static func openIdle(port: Int, count: Int, fragment: [UInt8]) async throws -> IdleConnections {
        try await onThread {
            var fds: [Int32] = []
            let start = ContinuousClock.now
            do {
                for _ in 0..<count {
                    let fd = try connect(port: port)
                    fds.append(fd)
                    if !fragment.isEmpty { try BlockingClient.sendAll(fd, fragment) }
                }
            } catch {
                for fd in fds { close(fd) }
                throw error
            }
            return IdleConnections(fds: fds, openedAt: start)
        }
    }

    /// How the server ended a batch of idle connections.
    struct Closing: Sendable {
        /// Connections still open at the deadline.
        var stillOpen: Int
        /// The first close seen, counted from when the first connection began to open (nil if none).
        var firstClose: Duration?
    }

    /// Waits until the server has closed every one of `idle` (EOF or reset, after reading any
    /// error response) or `timeout` passes. Closes them all.
    static func waitUntilClosedByServer(_ idle: IdleConnections, timeout: Double) async -> Closing {
        await
            (try? onThread {
                var open = Set(idle.fds)
                var firstClose: Duration?
                let deadline = Date().addingTimeInterval(timeout)
                var scratch = [UInt8](repeating: 0, count: 4096)
                while !open.isEmpty, Date() < deadline {
                    var polls = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                    _ = poll(&polls, nfds_t(polls.count), 100)
                    for entry in polls where entry.revents != 0 {
                        let n = recv(entry.fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
                        if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                            open.remove(entry.fd)
                            if firstClose == nil { firstClose = idle.openedAt.duration(to: .now) }
                        }
                    }
                }
                for fd in idle.fds { close(fd) }
                return Closing(stillOpen: open.count, firstClose: firstClose)
            }) ?? Closing(stillOpen: idle.fds.count, firstClose: nil)
    }

    /// How many of `fds` the peer has closed by now (a look, without reading or waiting).
    static func countClosed(_ fds: [Int32]) -> Int {
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&polls, nfds_t(polls.count), 0)
        var scratch: UInt8 = 0
        return polls.filter { entry in
            guard entry.revents != 0 else { return false }
            let n = recv(entry.fd, &scratch, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        }.count
    }

    /// Reads from `fd` until the peer closes, at most `limit` bytes or `timeout` seconds; nil on timeout.
    static func readUntilClose(_ fd: Int32, timeout: Double, limit: Int = 64 << 20) -> [UInt8]? {
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, out.count < limit {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let n = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                out += scratch[0..<n]
                continue
            }
            if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { return out }
        }
        return nil
    }

    /// Reads until `enough` holds for what has arrived, the peer closes, or `timeout` passes.
    static func read(_ fd: Int32, timeout: Double, until enough: ([UInt8]) -> Bool) -> [UInt8] {
        var out: [UInt8] = []
        var scratch = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline, !enough(out) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let n = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 { out += scratch[0..<n] } else if n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) { break }
        }
        return out
    }

    /// Runs `body` with a connected socket on a thread of its own, closing it afterwards.
    static func withConnection<T: Sendable>(port: Int, from source: String? = nil, _ body: @escaping @Sendable (Int32) throws -> T) async throws -> T {
        try await onThread {
            let fd = try connect(port: port, from: source)
            defer { close(fd) }
            return try body(fd)
        }
    }
}

extension Array where Element == UInt8 {
    /// Whether `text`'s UTF-8 bytes occur in these bytes (FastCGI records carry the text as is).
    func containsText(_ text: String) -> Bool {
        firstRange(of: Array(text.utf8)) != nil
    }
}
