// Scripts that misbehave: endless output, children that outlive them, a closed stdout. Each gets
// a clear answer, leaves no process of its group behind, and does not stop the host serving.
import Foundation
import NIOCore
import PosternCGI
import PosternCore
import PosternFastCGI
import PosternRuntime
import PosternTestSupport
import Testing

@Suite("CGI scripts that misbehave", .serialized)
struct MisbehavingScriptTests {
    /// A root with the misbehaving scripts; each writes the ids of its processes to $PIDDIR.
    static func makeRoot() throws -> (root: String, pids: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("postern-misbehave-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        let root = base + "/root"
        let pids = base + "/pids"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pids, withIntermediateDirectories: true)
        let scripts = [
            // A valid head, then output for ever.
            "forever.sh": "echo $$ > \"$PIDDIR/forever\"\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec yes 'output for ever'\n",
            // A head that never ends.
            "endless-head.sh": "echo $$ > \"$PIDDIR/endless-head\"\nprintf 'Content-Type: text/plain\\r\\n'\nexec yes 'X-More: y'\n",
            // Answers, then leaves two children running: one holding stdout, one detached from it.
            "orphans.sh": """
            printf 'Content-Type: text/plain\\r\\n\\r\\nparent done\\n'
            sleep 300 & echo $! > "$PIDDIR/holder"
            sleep 301 >/dev/null 2>&1 </dev/null & echo $! > "$PIDDIR/detached"
            echo $$ > "$PIDDIR/orphans"
            exit 0

            """,
            // Answers, closes stdout, and runs on (ignoring SIGTERM, so SIGKILL must end it).
            "closes-stdout.sh": """
            trap '' TERM
            echo $$ > "$PIDDIR/closes-stdout"
            printf 'Content-Type: text/plain\\r\\n\\r\\nbye\\n'
            exec >&-
            sleep 300

            """,
            "hello.sh": "printf 'Content-Type: text/plain\\r\\n\\r\\nhello\\n'\n",
        ]
        for (name, body) in scripts {
            try ("#!/bin/sh\n" + body).write(toFile: root + "/" + name, atomically: true, encoding: .utf8)
            chmod(root + "/" + name, 0o755)
        }
        return (root, pids)
    }

    static func pid(_ directory: String, _ name: String) async throws -> Int32 {
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return pid
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("no pid file \(name)")
    }

    /// Whether `pid` and every process of group `group` are gone within `seconds`.
    static func gone(_ pid: Int32, group: Int32, within seconds: Double = 10) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            let zombie = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? false
            if (kill(pid, 0) != 0 && errno == ESRCH || zombie) && processes(inGroup: group).isEmpty { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    static func withHost<T>(
        maxOutput: Int = 0, maxConcurrency: Int = 16, log: ErrorLog = ErrorLog(), listenerProtocol: ListenerProtocol = .http,
        _ body: (LiveServer, String) async throws -> T
    ) async throws -> T {
        let (root, pids) = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        return try await LiveServer.withHost(
            root: root, gatewayEnvironment: ["PIDDIR": pids], log: log, listenerProtocol: listenerProtocol,
            {
                $0.passEnvironment = ["PIDDIR"]
                $0.maxOutputBytes = maxOutput
                $0.maxConcurrency = maxConcurrency
                $0.killGraceSeconds = 0.5
            }
        ) { server in try await body(server, pids) }
    }

    @Test("output for ever past --cgi-max-output: the response is cut off, not ended; the script is stopped; others are served")
    func endlessOutput() async throws {
        let log = ErrorLog()
        try await Self.withHost(maxOutput: 1 << 20, log: log) { server, pids in
            let start = ContinuousClock.now
            let response = try await RawHTTP.get(server.port, "/forever.sh")
            #expect(response.status == 200)
            #expect(response.chunkedComplete == false, "a cut-off response must not end like a complete one")
            #expect(response.body.count <= 1 << 20, "\(response.body.count) bytes passed a 1 MiB limit")
            #expect(response.body.count > 1 << 19, "only \(response.body.count) bytes before the cut")
            #expect(ContinuousClock.now - start < .seconds(15), "the --cgi-timeout (20 s) ended it, not the limit")
            let pid = try await Self.pid(pids, "forever")
            #expect(try await Self.gone(pid, group: pid), "the script (pid \(pid)) still runs")
            #expect(await log.eventuallyContains { $0.contains("/forever.sh") && $0.contains("--cgi-max-output") })
            let other = try await RawHTTP.get(server.port, "/hello.sh")
            #expect(other.status == 200 && other.text == "hello\n")
        }
    }

    @Test(
        "over FastCGI a cut-off response has no END_REQUEST: the connection closes, the reason on FCGI_STDERR",
        arguments: [false, true])
    func endlessOutputOverFastCGI(keepConnection: Bool) async throws {
        try await Self.withHost(maxOutput: 1 << 20, listenerProtocol: .fastcgi) { server, _ in
            // Without KEEP_CONN the request takes the one-request fast path; with it, the full engine.
            let request =
                RequestBytes.head(.fastcgi, path: "/forever.sh", contentLength: 0, keepConnection: keepConnection)
                + RequestBytes.body(.fastcgi, [], end: true)
            let connection = try await RawClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.port))
            let (stdout, stderr, ended) = try await connection.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: request))
                var buffer = ByteBuffer()
                var stdout = 0
                var stderr = ""
                do {
                    for try await var chunk in inbound {
                        buffer.writeBuffer(&chunk)
                        while buffer.readableBytes >= 8,
                            let length = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt16.self),
                            let padding = buffer.getInteger(at: buffer.readerIndex + 6, as: UInt8.self),
                            buffer.readableBytes >= 8 + Int(length) + Int(padding)
                        {
                            let type = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)!
                            let content = buffer.getSlice(at: buffer.readerIndex + 8, length: Int(length))!
                            buffer.moveReaderIndex(forwardBy: 8 + Int(length) + Int(padding))
                            switch FastCGIRecordType(rawValue: type) {
                            case .stdout: stdout += content.readableBytes
                            case .stderr: stderr += String(buffer: content)
                            case .endRequest: return (stdout, stderr, true)
                            default: break
                            }
                        }
                    }
                } catch let error as IOError where error.errnoCode == ECONNRESET {}
                return (stdout, stderr, false)
            }
            #expect(!ended, "END_REQUEST after a cut-off response: the front-end would end it as complete")
            #expect(stdout > 1 << 19 && stdout <= (1 << 20) + 64 * 1024, "\(stdout) bytes of STDOUT")
            #expect(stderr.contains("--cgi-max-output"), "FCGI_STDERR: \(stderr)")
        }
    }

    @Test("a head that never ends past --cgi-max-output: 502, the script stopped")
    func endlessHead() async throws {
        try await Self.withHost(maxOutput: 16 * 1024) { server, pids in
            let response = try await RawHTTP.get(server.port, "/endless-head.sh")
            #expect(response.status == 502)
            let pid = try await Self.pid(pids, "endless-head")
            #expect(try await Self.gone(pid, group: pid), "the script (pid \(pid)) still runs")
        }
    }

    @Test("children that outlive the script: the response ends soon after it, and its whole process group is gone")
    func orphans() async throws {
        try await Self.withHost { server, pids in
            let start = ContinuousClock.now
            let response = try await RawHTTP.get(server.port, "/orphans.sh")
            let took = ContinuousClock.now - start
            #expect(response.status == 200 && response.text == "parent done\n")
            #expect(response.chunkedComplete != false)
            // The child holding stdout would hold the response for 300 s (or the 20 s timeout).
            #expect(took < .seconds(10), "the response took \(took): a background child held it")
            let parent = try await Self.pid(pids, "orphans")
            let holder = try await Self.pid(pids, "holder")
            let detached = try await Self.pid(pids, "detached")
            #expect(try await Self.gone(holder, group: parent), "the child holding stdout (pid \(holder)) survived")
            #expect(try await Self.gone(detached, group: parent), "the detached child (pid \(detached)) survived")
            #expect(try await lingeringZombies().isEmpty)
        }
    }

    @Test("a script that closes stdout and runs on: the answer arrives at once, the script is killed, its slot comes back")
    func closedStdout() async throws {
        try await Self.withHost(maxConcurrency: 1) { server, pids in
            let start = ContinuousClock.now
            let response = try await RawHTTP.get(server.port, "/closes-stdout.sh")
            #expect(response.status == 200 && response.text == "bye\n")
            #expect(ContinuousClock.now - start < .seconds(5))
            let pid = try await Self.pid(pids, "closes-stdout")
            // It ignores SIGTERM: only the SIGKILL after the grace ends it, well before --cgi-timeout.
            #expect(try await Self.gone(pid, group: pid, within: 10), "the script (pid \(pid)) still runs")
            // With --cgi-max-concurrency 1 this request needs the slot the script held.
            let next = try await RawHTTP.get(server.port, "/hello.sh")
            #expect(next.status == 200 && next.text == "hello\n")
            #expect(try await lingeringZombies().isEmpty)
        }
    }
}
