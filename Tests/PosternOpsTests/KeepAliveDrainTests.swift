// A reload under keep-alive load: a kept connection is idle for microseconds between a response
// and its client's next request, and a draining worker that closed it then reset that request.
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Keep-alive drain", .serialized)
    struct KeepAliveDrainTests {
        /// Clients that each send GETs back to back on one kept connection (a new one when a
        /// response says `Connection: close`); a request with no whole response is a failure.
        final class KeptAliveLoad: @unchecked Sendable {
            private let lock = NSLock()
            private var stopped = false
            private(set) var ok = 0
            private(set) var closes = 0
            private(set) var failures: [String] = []
            private var threads: [Thread] = []

            init(port: Int, clients: Int) {
                for _ in 0..<clients {
                    let thread = Thread { [self] in run(port: port) }
                    threads.append(thread)
                    thread.start()
                }
            }

            private func run(port: Int) {
                var fd: Int32 = -1
                while !lock.withLock({ stopped }) {
                    if fd < 0 {
                        guard let connected = try? BlockingClient.connectTCP(port: port) else { continue }
                        fd = connected
                        var timeout = timeval(tv_sec: 10, tv_usec: 0)
                        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    }
                    do {
                        try BlockingClient.sendAll(fd, Array("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n".utf8))
                        let close = try Self.readResponse(fd)
                        lock.withLock { ok += 1 }
                        if close {
                            lock.withLock { closes += 1 }
                            Glibc.close(fd)
                            fd = -1
                        }
                    } catch {
                        lock.withLock { if failures.count < 1000 { failures.append("\(error)") } }
                        Glibc.close(fd)
                        fd = -1
                    }
                }
                if fd >= 0 { Glibc.close(fd) }
            }

            /// One response read whole; whether it says `Connection: close`.
            static func readResponse(_ fd: Int32) throws -> Bool {
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                func more() throws {
                    let count = recv(fd, &buffer, buffer.count, 0)
                    guard count > 0 else { throw TestFailure(count == 0 ? "end of stream after a request" : "recv: errno \(errno)") }
                    bytes += buffer[..<count]
                }
                while bytes.firstRange(of: Array("\r\n\r\n".utf8)) == nil { try more() }
                let end = bytes.firstRange(of: Array("\r\n\r\n".utf8))!.upperBound
                let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
                let length =
                    head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                while bytes.count < end + length { try more() }
                return head.contains("connection: close")
            }

            func finish() -> (ok: Int, closes: Int, failures: [String]) {
                lock.withLock { stopped = true }
                for thread in threads { while !thread.isFinished { usleep(1000) } }
                return lock.withLock { (ok, closes, failures) }
            }
        }

        @Test("two SIGHUP reloads of a master under keep-alive load: no request fails; the draining workers answer with Connection: close")
        func masterReload() async throws {
            let server = try await OpsServer.start("keepalive-master", ["--workers", "2"])
            defer { server.process.stop() }
            #expect(await eventually { (try? await server.workerPIDs().count) == 2 })
            let load = KeptAliveLoad(port: server.port, clients: 8)
            for _ in 0..<2 {
                try await Task.sleep(for: .milliseconds(1500))
                let before = try await server.workerPIDs()
                server.signal(SIGHUP)
                #expect(await eventually(20) { (try? await server.workerPIDs()).map { $0.count == 2 && $0.isDisjoint(with: before) } ?? false })
            }
            try await Task.sleep(for: .milliseconds(1500))
            let result = load.finish()
            #expect(result.failures.isEmpty, "\(result.failures.count) failed: \(Set(result.failures))")
            #expect(result.ok > 200)
            #expect(result.closes >= 8, "the drained connections were told to close: \(result.closes)")
        }

        @Test("a single process's reload in place under keep-alive load: no request fails")
        func singleReload() async throws {
            let server = try await OpsServer.start("keepalive-single", [])
            defer { server.process.stop() }
            let load = KeptAliveLoad(port: server.port, clients: 8)
            try await Task.sleep(for: .milliseconds(1500))
            server.signal(SIGHUP)
            #expect(await eventually(20) { server.process.output.contains("reloading in place") })
            try await Task.sleep(for: .milliseconds(3000))
            let result = load.finish()
            #expect(result.failures.isEmpty, "\(result.failures.count) failed: \(Set(result.failures))")
            #expect(result.ok > 100)
        }
    }
}
