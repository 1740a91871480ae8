// Lying lengths, floods of tiny records and oversized params: refused or served, never stuck.
import Foundation
import Logging
import NIOCore
import Postern
import PosternApps
import PosternCore
import PosternEngine
import PosternFastCGI
import PosternTestSupport
import Testing

extension Hardening {
    @Suite("Length abuse")
    struct LengthAbuseTests {
        @Test("a declared body far larger than sent, then a half-close: closed promptly, the task ends", arguments: RequestBytes.allProtocols)
        func declaredBodyTooLong(listenerProtocol: ListenerProtocol) async throws {
            let counter = LiveTaskCounter()
            try await withLiveGateway([loopback(listenerProtocol)], application: TrackedApp(counter: counter), logger: .quiet) { addresses in
                let port = addresses[0].port!
                let fd = try await HostileSocket.onThread {
                    let fd = try HostileSocket.connect(port: port)
                    try BlockingClient.sendAll(
                        fd,
                        RequestBytes.head(listenerProtocol, path: "/body", contentLength: 1_000_000_000)
                            + RequestBytes.body(listenerProtocol, Array("only this".utf8), end: false))
                    return fd
                }
                defer { close(fd) }
                let started = await counter.wait(timeout: 5) { $0.live == 1 }
                #expect(started, "the app never started")
                let answer = try await HostileSocket.onThread {
                    shutdown(fd, Int32(SHUT_WR))
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                #expect(answer != nil, "the connection stayed open after the client half-closed")
                #expect(!(answer ?? []).containsText("ok 9"), "a truncated body was answered as complete")
                let ended = await counter.wait(timeout: 10) { $0.live == 0 }
                #expect(ended, "the request task still runs after the client left")
                #expect(counter.completed == 0, "the app read a 1 GB body of which 9 bytes were sent")
            }
        }

        @Test(
            "framing lengths larger than sent (FastCGI record, uwsgi packet, SCGI netstring): closed at the half-close",
            arguments: [
                (ListenerProtocol.fastcgi, [1, 5, 0, 1, 0xff, 0xff, 0, 0] + Array("short".utf8)),
                (.uwsgi, [0, 0xff, 0xff, 0] + Array("short".utf8)),
                (.scgi, Array("99999:CONTENT_LENGTH".utf8)),
            ])
        func framingTooLong(listenerProtocol: ListenerProtocol, bytes: [UInt8]) async throws {
            try await withLiveGateway([loopback(listenerProtocol)], application: Hello(), logger: .quiet) { addresses in
                let answer = try await HostileSocket.withConnection(port: addresses[0].port!) { fd in
                    try BlockingClient.sendAll(fd, bytes)
                    shutdown(fd, Int32(SHUT_WR))
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                #expect(answer != nil, "still open 10 s after the half-close")
            }
        }

        @Test("10,000 one-byte STDIN records: the body arrives whole")
        func tinyStdinRecords() async throws {
            try await withLiveGateway([loopback(.fastcgi)], application: Echo(), logger: .quiet) { addresses in
                var request = ByteBuffer(bytes: RequestBytes.head(.fastcgi, path: "/", contentLength: 10_000))
                var expected: [UInt8] = []
                for index in 0..<10_000 {
                    let byte = UInt8(truncatingIfNeeded: index % 251)
                    expected.append(byte)
                    FastCGIRecordEncoder.write(FastCGIRecord(type: .stdin, requestID: 1, content: ByteBuffer(bytes: [byte])), into: &request)
                }
                FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &request)
                let bytes = Array(request.readableBytesView)
                let answer = try await HostileSocket.withConnection(port: addresses[0].port!) { fd in
                    try BlockingClient.sendAll(fd, bytes)
                    return HostileSocket.readUntilClose(fd, timeout: 20)
                }
                let stdout = try #require(answer.flatMap(RequestBytes.fastCGIStdout), "no complete FastCGI response")
                let body = Array(stdout.split(separator: [13, 10, 13, 10] as [UInt8], maxSplits: 1, omittingEmptySubsequences: false).last ?? [])
                let same = body == expected
                #expect(same, "echoed \(body.count) bytes, expected the 10,000 sent in 10,000 records")
            }
        }

        @Test("10,000 one-byte PARAMS records: refused past the record limit, the server keeps serving")
        func tinyParamsRecords() async throws {
            try await withLiveGateway([loopback(.fastcgi)], application: Hello(), logger: .quiet) { addresses in
                let port = addresses[0].port!
                var request = ByteBuffer()
                FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: false, into: &request)
                var params = ByteBuffer()
                FastCGINameValuePairs.write(name: "HTTP_X_A", value: String(repeating: "v", count: 9_990), into: &params)
                while let byte = params.readSlice(length: 1) {
                    FastCGIRecordEncoder.write(FastCGIRecord(type: .params, requestID: 1, content: byte), into: &request)
                }
                FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &request)
                FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: 1, into: &request)
                let bytes = Array(request.readableBytesView)
                let answer = try await HostileSocket.withConnection(port: port) { fd in
                    try? BlockingClient.sendAll(fd, bytes)
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                #expect(answer != nil, "still open")
                #expect(!(answer ?? []).containsText("Hello, World!"), "a request over the PARAMS record limit was served")
                try await expectServing(.fastcgi, port: port)
            }
        }

        @Test("1 MiB of params against a 64 KiB limit: refused, the server keeps serving", arguments: RequestBytes.allProtocols)
        func oversizedParams(listenerProtocol: ListenerProtocol) async throws {
            var limits = GatewayLimits()
            limits.maxHeaderBytes = 64 * 1024
            limits.maxUWSGIVarsBytes = 4096
            try await withLiveGateway([loopback(listenerProtocol)], application: Hello(), limits: limits, logger: .quiet) { addresses in
                let port = addresses[0].port!
                let big = String(repeating: "b", count: 1 << 20)
                let bytes: [UInt8]
                switch listenerProtocol {
                case .fastcgi:
                    var out = ByteBuffer()
                    FastCGIRecordEncoder.writeBeginRequest(requestID: 1, role: .responder, keepConnection: false, into: &out)
                    var params = ByteBuffer()
                    FastCGINameValuePairs.write(name: "HTTP_X_BIG", value: big, into: &params)
                    FastCGIRecordEncoder.writeStream(type: .params, requestID: 1, content: params, into: &out)
                    FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 1, into: &out)
                    bytes = Array(out.readableBytesView)
                case .scgi:
                    bytes = Array("\(big.utf8.count + 22):CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0}X\u{0}\(big)\u{0},".utf8)
                case .uwsgi:
                    // The wire cannot carry more than 65535 bytes of vars: send that much against 4 KiB.
                    bytes = [0, 0xff, 0xff, 0] + [UInt8](repeating: 0x62, count: 65535)
                default:
                    bytes = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n".utf8)
                }
                let answer = try await HostileSocket.withConnection(port: port) { fd in
                    try? BlockingClient.sendAll(fd, bytes)
                    return HostileSocket.readUntilClose(fd, timeout: 10)
                }
                let text = answer.map { String(decoding: $0, as: UTF8.self) } ?? ""
                #expect(answer != nil, "still open 10 s after oversized params")
                #expect(!text.contains("Hello, World!"), "oversized params were served: \(text.prefix(200))")
                try await expectServing(listenerProtocol, port: port)
            }
        }

        /// A normal request on `port` is answered with Hello's greeting.
        func expectServing(_ listenerProtocol: ListenerProtocol, port: Int) async throws {
            let request = RequestBytes.request(listenerProtocol, path: "/")
            let answer = try await HostileSocket.withConnection(port: port) { fd in
                try BlockingClient.sendAll(fd, request)
                return HostileSocket.readUntilClose(fd, timeout: 10) ?? []
            }
            #expect(answer.containsText("Hello, World!"), "the server stopped serving: \(String(decoding: answer, as: UTF8.self).prefix(200))")
        }
    }
}
