// The status page, live: php-fpm's fields, the accept queue as the kernel has it (checked
// against ss), the workers with their memory and state, refusals and harakiri kills counted.
import Foundation
import PosternSCGI
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Status page", .serialized)
    struct StatusPageTests {
        /// A unix-socket client that connects and sends nothing (it waits in the accept queue).
        static func connectUnix(_ path: String) throws -> Int32 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard result == 0 else {
                close(fd)
                throw TestFailure("connect \(path): errno \(errno)")
            }
            return fd
        }

        /// `ss`'s Recv-Q and Send-Q for the listening socket whose line contains `local`.
        static func ss(_ arguments: [String], local: String) throws -> (recvQ: Int, sendQ: Int)? {
            let output = try runToEnd("/usr/bin/env", ["ss", "-H"] + arguments).output
            for line in output.split(separator: "\n") where line.contains(local) {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                // ss -ltn: State Recv-Q Send-Q Local Peer; ss -lx: Netid State Recv-Q Send-Q Local ...
                let offset = arguments.contains("-lx") ? 2 : 1
                guard fields.count > offset + 1, let recv = Int(fields[offset]), let send = Int(fields[offset + 1]) else { continue }
                return (recv, send)
            }
            return nil
        }

        static func listener(_ status: [String: Any], _ address: String) -> [String: Any]? {
            (status["listeners"] as? [[String: Any]])?.first { ($0["address"] as? String) == address }
        }

        @Test(
            "with the workers stopped, listen_queue is the kernel's accept queue, as ss shows it, on TCP and on a unix socket; --backlog sets listen_queue_len")
        func listenQueue() async throws {
            let directory = try Paths.makeTestDirectory("status-queue")
            let tcp = try Ports.free()
            let path = directory + "/scgi.sock"
            let server = try await OpsServer.start(
                "status-queue", ["--workers", "2", "--scgi", "127.0.0.1:\(tcp)", "--scgi", "unix:\(path)", "--backlog", "50"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            let workers = try await server.workerPIDs()
            // The accept loop held up: the worker stopped, connections wait in the kernel.
            for pid in workers { kill(pid_t(pid), SIGSTOP) }
            defer { for pid in workers { kill(pid_t(pid), SIGCONT) } }
            // Stopped for good (state T) before the first connection, or a thread woken by it
            // could still take it.
            #expect(
                await eventually(5) {
                    workers.allSatisfy { pid in
                        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                        return stat.split(separator: ")").last?.split(separator: " ").first == "T"
                    }
                })
            try await Task.sleep(for: .milliseconds(200))
            var clients: [Int32] = []
            defer { for fd in clients { close(fd) } }
            // Each sends its request at once, as a front-end does: the engine's TCP listeners
            // defer the accept until a connection's first bytes are in (TCP_DEFER_ACCEPT).
            let request = try SCGIRequestEncoder.encodeHead(variables: [("REQUEST_METHOD", "GET"), ("SERVER_PROTOCOL", "HTTP/1.1")], contentLength: 0)
            for index in 0..<8 {
                let fd = index < 5 ? try BlockingClient.connectTCP(port: tcp) : try Self.connectUnix(path)
                clients.append(fd)
                _ = request.withUnsafeReadableBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            try await Task.sleep(for: .milliseconds(300))
            let status = try await server.status()
            let tcpQueue = try #require(Self.listener(status, "127.0.0.1:\(tcp)"), "\(status["listeners"] ?? "none")")
            let unixQueue = try #require(Self.listener(status, "unix:\(path)"), "\(status["listeners"] ?? "none")")
            let ssTCP = try #require(try Self.ss(["-ltn"], local: "127.0.0.1:\(tcp)"))
            let ssUnix = try #require(try Self.ss(["-lx"], local: path))
            #expect(tcpQueue["queued"] as? Int == 5 && ssTCP.recvQ == 5, "status \(tcpQueue), ss \(ssTCP)")
            #expect(tcpQueue["length"] as? Int == 50 && ssTCP.sendQ == 50, "status \(tcpQueue), ss \(ssTCP)")
            #expect(unixQueue["queued"] as? Int == 3 && ssUnix.recvQ == 3, "status \(unixQueue), ss \(ssUnix)")
            #expect(unixQueue["length"] as? Int == 50 && ssUnix.sendQ == 50, "status \(unixQueue), ss \(ssUnix)")
            #expect(status["listen_queue"] as? Int == 8)
            #expect((status["max_listen_queue"] as? Int ?? 0) >= 8)
            #expect((status["listen_queue_len"] as? Int ?? 0) >= 100)
            // Served again, the queue empties; the most seen stays.
            for pid in workers { kill(pid_t(pid), SIGCONT) }
            for fd in clients { close(fd) }
            clients = []
            #expect(await eventually { ((try? await server.status())?["listen_queue"] as? Int) == 0 })
            #expect((try await server.status()["max_listen_queue"] as? Int ?? 0) >= 8)
        }

        @Test("php-fpm's fields: start time, accepted requests, workers active and idle with pid, memory and state, the most busy at once")
        func workerFields() async throws {
            let server = try await OpsServer.start("status-workers", ["--workers", "2"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            let started = Int(Date().timeIntervalSince1970)
            let slow = Task { await server.get("/sleep?ms=1500") }
            #expect(await eventually(5) { ((try? await server.status())?["active_workers"] as? Int) == 1 })
            let status = try await server.status()
            #expect(status["total_workers"] as? Int == 2)
            #expect(status["idle_workers"] as? Int == 1)
            #expect((status["max_active_workers"] as? Int ?? 0) >= 1)
            let start = status["start_time"] as? Int ?? 0
            #expect(abs(start - started) < 30, "start_time \(start), now \(started)")
            #expect((status["start_since"] as? Int ?? -1) >= 0)
            let workers = status["workers"] as? [[String: Any]] ?? []
            #expect(workers.count == 2)
            for worker in workers {
                #expect((worker["rss_bytes"] as? Int ?? 0) > 1 << 20, "\(worker)")
                #expect(["busy", "idle"].contains(worker["state"] as? String ?? ""), "\(worker)")
            }
            #expect(workers.contains { $0["state"] as? String == "busy" && $0["in_flight"] as? Int == 1 })
            #expect(await slow.value.status == 200)
            // The workers report every 200 ms.
            #expect(await eventually { ((try? await server.status())?["active_workers"] as? Int) == 0 })
            let after = try await server.status()
            #expect(after["accepted_conn"] as? Int == after["requests"] as? Int)
            #expect((after["accepted_conn"] as? Int ?? 0) >= 1)
            #expect(after["active_workers"] as? Int == 0)
            #expect((after["max_active_workers"] as? Int ?? 0) >= 1)
        }

        @Test("limit_refusals counts the connections turned away over --max-connections")
        func limitRefusals() async throws {
            let scgi = try Ports.free()
            let server = try await OpsServer.start("status-refusals", ["--scgi", "127.0.0.1:\(scgi)", "--max-connections", "1"])
            defer { server.process.stop() }
            // One connection holds the only slot (it sends half a request, and is not answered:
            // a start-up probe still open could have taken the slot first); the next is refused.
            var holder: Int32 = -1
            for _ in 0..<10 {
                let candidate = try BlockingClient.connectTCP(port: scgi)
                try BlockingClient.sendAll(candidate, Array("70:".utf8))
                try await Task.sleep(for: .milliseconds(300))
                var ready = pollfd(fd: candidate, events: Int16(POLLIN), revents: 0)
                if poll(&ready, 1, 0) == 0 {
                    holder = candidate
                    break
                }
                close(candidate)
            }
            #expect(holder >= 0, "no connection held the slot")
            defer { close(holder) }
            let before = try await server.status()["limit_refusals"] as? Int ?? 0
            let refused = try await BlockingClient.exchange(port: scgi, Array("24:CONTENT_LENGTH\u{0}0\u{0}SCGI\u{0}1\u{0},".utf8))
            #expect(String(decoding: refused, as: UTF8.self).hasPrefix("Status: 503"), "\(String(decoding: refused, as: UTF8.self))")
            #expect(await eventually { ((try? await server.status())?["limit_refusals"] as? Int) == before + 1 })
            let metrics = await OpsServer.get(port: server.statusPort, "/metrics")
            #expect(metrics.body.contains("postern_limit_refusals_total \(before + 1)"), "\(metrics.body.prefix(2000))")
        }

        @Test(
            "postern top: the workers with pid, state, requests and memory, the listeners' queues, the request rate; a page that is not a status page is one clear error"
        )
        func top() async throws {
            let scgi = try Ports.free()
            let server = try await OpsServer.start("status-top", ["--workers", "2", "--scgi", "127.0.0.1:\(scgi)"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            for index in 0..<5 { _ = await server.get("/top-\(index)") }
            let workers = try await server.workerPIDs()
            let result = try runToEnd(Paths.binary("postern"), ["top", "http://127.0.0.1:\(server.statusPort)/", "--once", "--interval", "0.3"])
            #expect(result.status == 0, "\(result.output)")
            let lines = result.output.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("postern master pid \(server.process.pid), up ") == true, "\(result.output)")
            #expect(lines.contains { $0.contains("2 workers (") }, "\(result.output)")
            #expect(lines.contains { $0.hasPrefix("requests ") && $0.contains("req/s ") }, "\(result.output)")
            for pid in workers {
                let row = lines.first { $0.hasPrefix("\(pid) ") }
                #expect(row != nil, "no row for worker \(pid): \(result.output)")
                #expect(row.map { $0.contains("idle") || $0.contains("busy") } == true)
            }
            #expect(lines.contains { $0.hasPrefix("scgi 127.0.0.1:\(scgi)") }, "\(result.output)")
            #expect(lines.contains { $0.hasPrefix("http 127.0.0.1:\(server.port)") }, "\(result.output)")
            // Without --once into a pipe (a file, `| tee`): frame after frame, each written at once.
            let piped = Process()
            piped.executableURL = URL(fileURLWithPath: Paths.binary("postern"))
            piped.arguments = ["top", "http://127.0.0.1:\(server.statusPort)/", "--interval", "0.2"]
            let pipe = Pipe()
            piped.standardOutput = pipe
            try piped.run()
            try await Task.sleep(for: .milliseconds(1500))
            piped.terminate()
            let frames = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            piped.waitUntilExit()
            #expect(frames.components(separatedBy: "postern master pid").count - 1 >= 3, "frames written before the end: \(frames)")
            let wrong = try runToEnd(Paths.binary("postern"), ["top", "http://127.0.0.1:\(server.port)/", "--once"])
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("is not a Postern status page"), "\(wrong.output)")
        }
    }
}
