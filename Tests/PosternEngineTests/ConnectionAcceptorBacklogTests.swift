import Foundation
import Logging
import NIOCore
import Testing

@testable import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// What waits in a listening socket's backlog when an acceptor stops is served, not reset: a
/// front-end has sent its request on those connections and cannot send a POST again.
@Suite struct ConnectionAcceptorBacklogTests {
    @Test func connectionsQueuedAtTheStopAreHandedOverThenTheSocketRefuses() async throws {
        let fd = try ListeningSocket.open(ListenerSpec(.http, .tcp(host: "127.0.0.1", port: 0)))
        guard let port = SocketAddress.local(of: fd)?.port else { throw TestError("no local port") }
        // Three clients the kernel has accepted, their requests sent, nobody has called accept.
        var clients: [CInt] = []
        defer { for client in clients { close(client) } }
        for _ in 0..<3 {
            let (client, connected) = Self.connect(port: port)
            #expect(connected == 0)
            _ = "GET / HTTP/1.1\r\n\r\n".withCString { send(client, $0, 18, 0) }
            clients.append(client)
        }
        // Stopped before its thread runs: the thread's loop never accepts, only the stop does.
        let acceptor = try ConnectionAcceptor(listeningSocket: fd, threads: 1, cycle: nil, logger: Logger(label: "test"))
        acceptor.stop()
        acceptor.start()
        var handedOver: [ConnectionAcceptor.AcceptedConnection] = []
        for await connection in acceptor.accepted { handedOver.append(connection) }
        #expect(handedOver.count == 3)
        for connection in handedOver {
            var byte: UInt8 = 0
            #expect(recv(connection.socket, &byte, 1, Int32(MSG_PEEK)) == 1, "the request is there to be served")
            close(connection.socket)
        }
        // The listener is closed: a new connection is refused, not queued for nobody.
        let (late, refused) = Self.connect(port: port)
        let error = errno
        defer { close(late) }
        #expect(refused == -1 && error == ECONNREFUSED)
    }

    /// A blocking TCP connect to 127.0.0.1:`port`: the socket and `connect`'s result.
    static func connect(port: Int) -> (socket: CInt, result: CInt) {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return (client, result)
    }

    struct TestError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
