import CPosternSocket
import NIOCore
import PosternRuntime
import Synchronization

/// The accept queues of the server's listening sockets, as the kernel has them: how many
/// connections wait to be accepted now, the most seen since start, and the queue's length
/// (`--backlog`, capped at `net.core.somaxconn`). Read from the sockets themselves
/// (``postern_listen_queue``: TCP_INFO for TCP, sock_diag for unix sockets), so the figure is
/// the one `ss -ltn` / `ss -lx` show as Recv-Q and Send-Q, for TCP and unix sockets alike
/// (php-fpm reads /proc/net/tcp and knows no unix socket's queue; uWSGI's is per-platform).
package final class ListenQueueMonitor: Sendable {
    package struct Reading: Codable, Sendable, Equatable {
        package var `protocol`: String
        package var address: String
        /// Connections waiting to be accepted now.
        package var queued: Int
        /// The most seen waiting at one sample (every 200 ms, and at each status request).
        package var maxQueued: Int
        /// The accept queue's length.
        package var length: Int
    }

    private let listeners: [(listenerProtocol: ListenerProtocol, fd: Int32, address: String)]
    private let maxSeen: Mutex<[Int]>

    /// - Parameter listeners: the protocol and listening descriptor of each.
    package init(_ listeners: [(ListenerProtocol, Int32)]) {
        self.listeners = listeners.map { ($0.0, $0.1, SocketAddress.local(of: $0.1)?.listenerText ?? "fd:\($0.1)") }
        maxSeen = Mutex([Int](repeating: 0, count: listeners.count))
    }

    /// Each listener's queue now (a socket the kernel cannot describe is left out).
    package func sample() -> [Reading] {
        var readings: [Reading] = []
        for (index, listener) in listeners.enumerated() {
            var queued: UInt32 = 0
            var length: UInt32 = 0
            guard postern_listen_queue(listener.fd, &queued, &length) == 0 else { continue }
            let most = maxSeen.withLock { seen -> Int in
                seen[index] = max(seen[index], Int(queued))
                return seen[index]
            }
            readings.append(
                Reading(protocol: listener.listenerProtocol.rawValue, address: listener.address, queued: Int(queued), maxQueued: most, length: Int(length)))
        }
        return readings
    }

    /// Samples every 200 ms until cancelled (the most seen between status requests counts).
    package func watch() async {
        while !Task.isCancelled {
            _ = sample()
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
