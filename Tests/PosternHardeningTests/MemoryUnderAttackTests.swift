// Memory under attack: 2,000 clients, each with a head at the limit and a body that stops, against
// the worst case the default limits promise (GatewayLimits.worstCaseMemoryBytes).
import Foundation
import NIOCore
import PosternCore
import PosternEngine
import PosternFastCGI
import PosternRuntime
import PosternSCGI
import PosternTestSupport
import PosternUWSGI
import Testing

extension Hardening {
    @Suite("Memory under attack", .serialized)
    struct MemoryUnderAttackTests {
        static let clients = 2000
        static let limits = GatewayLimits()

        /// A request to the ops app's /sleep (30 s, never reading its body) whose head is just
        /// under the protocol's limit, promising 1 MiB of body, followed by `bodyBufferBytes` of it.
        static func request(_ listenerProtocol: ListenerProtocol) throws -> [UInt8] {
            // NIOHTTP1 (llhttp) stops an HTTP head at 80 KiB, below --max-header-bytes.
            let headLimit =
                listenerProtocol == .uwsgi
                ? limits.maxUWSGIVarsBytes
                : listenerProtocol == .http ? min(limits.maxHeaderBytes, 80 * 1024) : limits.maxHeaderBytes
            let padding = String(repeating: "a", count: headLimit - 1024)
            let promised = 1 << 20
            let body = [UInt8](repeating: UInt8(ascii: "b"), count: limits.bodyBufferBytes)
            let variables: [(name: String, value: String)] = [
                ("REQUEST_METHOD", "POST"), ("SCRIPT_NAME", ""), ("PATH_INFO", "/sleep"), ("QUERY_STRING", "ms=30000"),
                ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"), ("SERVER_PROTOCOL", "HTTP/1.1"),
                ("REQUEST_URI", "/sleep?ms=30000"), ("CONTENT_LENGTH", String(promised)), ("HTTP_X_PAD", padding),
            ]
            switch listenerProtocol {
            case .http:
                return Array("POST /sleep?ms=30000 HTTP/1.1\r\nHost: x\r\nContent-Length: \(promised)\r\nX-Pad: \(padding)\r\n\r\n".utf8) + body
            case .scgi:
                return Array(try SCGIRequestEncoder.encodeHead(variables: variables, contentLength: promised).readableBytesView) + body
            case .uwsgi:
                return Array(try UWSGIRequestEncoder.encodeHead(variables: variables, contentLength: promised).readableBytesView) + body
            default:
                var out = ByteBuffer()
                FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: false, into: &out)
                var params = ByteBuffer()
                for (name, value) in variables { FastCGINameValuePairs.write(name: name, value: value, into: &params) }
                FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &out)
                FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &out)
                FastCGIRecordEncoder.writeStream(type: .stdin, requestID: 1, content: ByteBuffer(bytes: body), into: &out)
                return Array(out.readableBytesView)
            }
        }

        /// Opens `count` connections and sends `bytes` on each without blocking, until all is
        /// sent or nothing moves for two seconds (the server stopped reading: backpressure).
        static func attack(port: Int, count: Int, bytes: [UInt8]) async throws -> (fds: [Int32], sent: Int) {
            try await HostileSocket.onThread {
                var fds: [Int32] = []
                var offsets: [Int] = []
                for _ in 0..<count {
                    let fd = try HostileSocket.connect(port: port)
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                    fds.append(fd)
                    offsets.append(0)
                }
                var quietSince = ContinuousClock.now
                while ContinuousClock.now - quietSince < .seconds(2) {
                    var moved = false
                    for index in fds.indices where offsets[index] < bytes.count {
                        let sent = bytes[offsets[index]...].withUnsafeBytes {
                            send(fds[index], $0.baseAddress, min($0.count, 65536), Int32(MSG_NOSIGNAL))
                        }
                        if sent > 0 {
                            offsets[index] += sent
                            moved = true
                        } else if sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                            offsets[index] = bytes.count  // closed by the server
                        }
                    }
                    if moved { quietSince = ContinuousClock.now } else { usleep(20_000) }
                    if offsets.allSatisfy({ $0 >= bytes.count }) { break }
                }
                return (fds, offsets.reduce(0, +))
            }
        }

        @Test(
            "2,000 clients with a maximal head and a stalled body stay within the default limits' worst case",
            arguments: RequestBytes.allProtocols)
        func worstCase(listenerProtocol: ListenerProtocol) async throws {
            let files = HostileSocket.raiseFileLimit()
            try #require(files >= rlim_t(Self.clients + 100), "RLIMIT_NOFILE \(files): too low for \(Self.clients) clients")
            let bound = Self.limits.worstCaseMemoryBytes
            #expect(bound == 1 << 30, "docs/serving.md quotes 1 GiB for the defaults")
            let server = try await PosternProcess.start("memory-\(listenerProtocol)", ports: 1, wrapper: ["/usr/bin/prlimit", "--nofile=4096:4096"]) { ports in
                ["--app", "ops", "--\(listenerProtocol)", "127.0.0.1:\(ports[0])", "--log-level", "error"]
            }
            defer { server.stop() }
            let before = server.residentKiB
            let (fds, sent) = try await Self.attack(port: server.ports[0], count: Self.clients, bytes: try Self.request(listenerProtocol))
            defer { for fd in fds { close(fd) } }
            try await Task.sleep(for: .seconds(1))
            let held = server.openDescriptors
            let peak = server.peakResidentKiB
            let now = server.residentKiB
            // The attack reached the limit: --max-connections (1024) connections held open…
            #expect(held >= Self.limits.maxConnections, "only \(held) descriptors open: the connections were not held")
            // …each with its head and its body buffered (well over a head per connection)…
            #expect(
                peak * 1024 > Self.limits.maxConnections * Self.limits.maxUWSGIVarsBytes,
                "peak RSS \(peak) KiB: the heads and bodies never reached the server")
            // …and the server stayed within the figure.
            #expect(peak * 1024 <= bound, "peak RSS \(peak) KiB over the worst case \(bound >> 10) KiB")
            #expect(server.process.isRunning)
            print(
                "memory under attack (\(listenerProtocol)): \(Self.clients) clients, \(sent >> 20) MiB sent, \(held) descriptors; RSS \(before) KiB before, \(now) KiB after, peak \(peak) KiB; bound \(bound >> 10) KiB"
            )
        }
    }
}
