// Running out of resources, live: file descriptors and disk space. The server keeps serving,
// says what is wrong once per interval (not once per connection or per line), and recovers.
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Running out of resources", .serialized)
    struct ResourceTests {
        static func lines(_ text: String, containing needle: String) -> Int {
            text.split(separator: "\n").filter { $0.contains(needle) }.count
        }

        @Test("out of file descriptors: it keeps running, says so once a second per listener, and serves again when they are free")
        func outOfDescriptors() async throws {
            let scgiPort = try Ports.free()
            // About 22 descriptors at rest (event loops, accept threads, listeners, stdio): 64 leaves
            // room for some 40 connections, and 120 clients are offered.
            let server = try await OpsServer.start(
                "fd-limit", ["--scgi", "127.0.0.1:\(scgiPort)"], statusPort: false, wrapper: ["/usr/bin/prlimit", "--nofile=64:64"])
            defer { server.process.stop() }
            #expect(await server.get("/hello").status == 200)
            // Clients that connect and send half a request each, 60 per listener.
            let held = try await OpsServer.pool.runIfActive { () throws -> [Int32] in
                var fds: [Int32] = []
                for (port, fragment) in [(scgiPort, "12:"), (server.port, "GET / HTTP/1.1\r\n")] {
                    for _ in 0..<60 {
                        let fd = try BlockingClient.connectTCP(port: port)
                        try BlockingClient.sendAll(fd, Array(fragment.utf8))
                        fds.append(fd)
                    }
                }
                return fds
            }
            let start = ContinuousClock.now
            try await Task.sleep(for: .seconds(4))
            let elapsed = Double((ContinuousClock.now - start).components.seconds) + 1
            #expect(server.process.isRunning, "the server died out of descriptors: \(server.process.output.suffix(1000))")
            let output = server.process.output
            let warnings = output.split(separator: "\n").filter {
                $0.contains("cannot accept: Too many open files; connections wait in the backlog, retrying every 50 ms")
            }
            let scgi = warnings.filter { $0.contains("protocol=scgi") }.count
            let http = warnings.filter { $0.contains("protocol=http") }.count
            #expect(scgi >= 1, "the SCGI listener never said it could not accept: \(output.suffix(1500))")
            #expect(http >= 1, "the HTTP listener never said it could not accept: \(output.suffix(1500))")
            // Once a second per listener at most (plus one for the boundary), not once per attempt.
            #expect(scgi <= Int(elapsed) + 2 && http <= Int(elapsed) + 2, "\(scgi) + \(http) warnings in about \(elapsed) s")
            for fd in held { close(fd) }
            // Descriptors free again: both listeners serve.
            var served = false
            for _ in 0..<50 where !served {
                served = await server.get("/hello").status == 200
                if !served { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(served, "no answer over HTTP after the clients left")
            let answer = try await OpsServer.pool.runIfActive {
                try BlockingClient.blockingExchange(port: scgiPort, RequestBytes.request(.scgi, path: "/hello"))
            }
            #expect(
                String(decoding: answer, as: UTF8.self).contains("Status: 200"),
                "SCGI after the clients left: \(String(decoding: answer.prefix(200), as: UTF8.self))")
        }

        @Test("a full disk under --access-log: requests are served, one error per interval, lines again when space returns")
        func fullDisk() async throws {
            let mount = try Paths.makeTestDirectory("disk-full") + "/small"
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            let mounted = try runToEnd("/bin/mount", ["-t", "tmpfs", "-o", "size=128k", "tmpfs", mount])
            try #require(mounted.status == 0, "a small tmpfs is needed (root): \(mounted.output)")
            defer { _ = try? runToEnd("/bin/umount", ["-l", mount]) }
            // Fill the file system first: a line appended to a page the log already has would fit.
            let filler = mount + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
            try #require(fd >= 0)
            let block = [UInt8](repeating: 0x78, count: 4096)
            while write(fd, block, block.count) > 0 {}
            let full = errno
            close(fd)
            #expect(full == ENOSPC, "filling the tmpfs ended with errno \(full)")

            let log = mount + "/access.log"
            let server = try await OpsServer.start("disk-full", ["--access-log", log], statusPort: false)
            defer { server.process.stop() }
            for _ in 0..<30 {
                #expect(await server.get("/hello").status == 200)
            }
            let size = (try FileManager.default.attributesOfItem(atPath: log)[.size] as? Int) ?? -1
            #expect(size == 0, "\(size) bytes written to a full disk?")
            _ = await eventually(3) { server.process.output.contains("cannot write") }
            try await Task.sleep(for: .milliseconds(300))
            var output = server.process.output
            #expect(
                Self.lines(output, containing: "cannot write (No space left on device)") == 1,
                "one error for 30 lost lines within the interval: \(output.suffix(1500))")

            // Space returns: the next line is written, and the loss is told.
            try FileManager.default.removeItem(atPath: filler)
            #expect(await server.get("/after").status == 200)
            #expect(
                await eventually(3) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("GET /after") },
                "no line after space returned")
            #expect(await eventually(3) { server.process.output.contains("writing again; 30 lines were dropped") })
            output = server.process.output
            #expect(output.contains("writing again; 30 lines were dropped"), "\(output.suffix(1500))")
            #expect(server.process.isRunning)
        }
    }
}
