// The CGI script host live over the HTTP listener: every example script and every refusal.
import Foundation
import NIOCore
import Postern
import PosternCGI
import PosternCGIHost
import PosternCore
import Testing

@Suite("CGI script host over HTTP")
struct CGIScriptHostTests {
    @Test("form.py: GET query and urlencoded POST body")
    func formHandler() async throws {
        try await LiveServer.withHost { server in
            let get = try await RawHTTP.get(server.port, "/form.py?name=postern&lang=swift")
            #expect(get.status == 200)
            #expect(get.header("Content-Type") == "text/plain; charset=utf-8")
            #expect(get.text == "lang=swift\nname=postern\n")
            let post = try await RawHTTP.post(
                server.port, "/form.py", body: Array("b=2&a=%C3%A9t%C3%A9".utf8), contentType: "application/x-www-form-urlencoded")
            #expect(post.status == 200)
            #expect(post.text == "a=été\nb=2\n")
        }
    }

    @Test("env.sh: a clean environment with resolved SCRIPT_NAME/PATH_INFO; no HTTP_PROXY, no gateway variables")
    func cleanEnvironment() async throws {
        setenv("POSTERN_TEST_GATEWAY_SECRET", "do-not-leak", 1)
        let gatewayEnvironment = ProcessEnvironment.current.merging(["PASSED_ON": "allowed", "HTTP_PROXY": "http://gateway-proxy/"]) { $1 }
        try await LiveServer.withHost(gatewayEnvironment: gatewayEnvironment, { $0.passEnvironment = ["PASSED_ON", "HTTP_PROXY"] }) { server in
            let response = try await RawHTTP.get(server.port, "/env.sh/extra/path?x=1", headers: ["Proxy: http://evil.example/", "X-Custom: yes"])
            #expect(response.status == 200)
            let variables = parseEnvDump(response.text)
            let root = try #require(CGIScriptResolver.realPath(TestPaths.scriptsDirectory))
            #expect(variables["SCRIPT_NAME"] == "/env.sh")
            #expect(variables["PATH_INFO"] == "/extra/path")
            #expect(variables["PATH_TRANSLATED"] == root + "/extra/path")
            #expect(variables["SCRIPT_FILENAME"] == root + "/env.sh")
            #expect(variables["DOCUMENT_ROOT"] == root)
            #expect(variables["QUERY_STRING"] == "x=1")
            #expect(variables["GATEWAY_INTERFACE"] == "CGI/1.1")
            #expect(variables["REQUEST_METHOD"] == "GET")
            #expect(variables["HTTP_X_CUSTOM"] == "yes")
            #expect(variables["PATH"] == "/usr/local/bin:/usr/bin:/bin")
            #expect(variables["PASSED_ON"] == "allowed")
            #expect(variables["HTTP_PROXY"] == nil)
            #expect(!response.text.contains("evil.example"))
            #expect(!response.text.contains("gateway-proxy"))
            #expect(variables["POSTERN_TEST_GATEWAY_SECRET"] == nil)
            #expect(!response.text.contains("do-not-leak"))
            #expect(variables["HOME"] == nil)
        }
    }

    @Test("an ISINDEX query becomes the script's argv (RFC 3875 §4.4)")
    func isindexArgv() async throws {
        try await LiveServer.withHost { server in
            let response = try await RawHTTP.get(server.port, "/env.sh?first+second%20word")
            #expect(response.text.contains("ARG=first\nARG=second word\n"))
        }
    }

    @Test("upload.pl: a 16 MiB body streams through the script intact")
    func largeUpload() async throws {
        let size = 16 << 20
        var body = [UInt8](repeating: 0, count: size)
        var state: UInt32 = 2_463_534_242
        for index in body.indices {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            body[index] = UInt8(truncatingIfNeeded: state)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("postern-upload-\(getpid())")
        try Data(body).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let digest = try await runProgram("/usr/bin/sha256sum", arguments: [file.path], environment: [:])
        let expected = String(String(decoding: digest.stdout, as: UTF8.self).prefix(64))
        try await LiveServer.withHost { server in
            let response = try await RawHTTP.post(server.port, "/upload.pl", body: body)
            #expect(response.status == 200)
            #expect(response.text == "size=\(size)\nsha256=\(expected)\n")
        }
    }

    @Test("slow.sh: the body is streamed as the script writes it, not buffered")
    func streaming() async throws {
        try await LiveServer.withHost { server in
            let start = ContinuousClock.now
            let firstTick = LockedBox<Duration?>(nil)
            let response = try await RawHTTP.send(server.port, head: "GET /slow.sh?5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") { soFar in
                if String(decoding: soFar, as: UTF8.self).contains("tick 1") {
                    firstTick.withLockedValue { if $0 == nil { $0 = ContinuousClock.now - start } }
                }
            }
            let total = ContinuousClock.now - start
            #expect(response.status == 200)
            #expect(response.header("Transfer-Encoding") == "chunked")
            #expect(response.text == "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n")
            let first = try #require(firstTick.withLockedValue { $0 })
            #expect(total >= .milliseconds(900))
            #expect(first < total - .milliseconds(500))
        }
    }

    @Test("escapes are refused: .., %2e%2e, symlinks out of the root, non-executable, missing, directories")
    func escapes() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        try await LiveServer.withHost(root: root.path) { server in
            do {
                let status = try await RawHTTP.get(server.port, "/env.sh").status
                #expect(status == 200, "/env.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/inside-link.sh").status
                #expect(status == 200, "/inside-link.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/../outside/secret.sh").status
                #expect(status == 403, "/../outside/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/sub/../../outside/secret.sh").status
                #expect(status == 403, "/sub/../../outside/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/%2e%2e/outside/secret.sh").status
                #expect(status == 403, "/%2e%2e/outside/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/sub/%2E%2E/%2e%2e/outside/secret.sh").status
                #expect(status == 403, "/sub/%2E%2E/%2e%2e/outside/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/escape.sh").status
                #expect(status == 403, "/escape.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/escape-dir/secret.sh").status
                #expect(status == 403, "/escape-dir/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/not-executable.sh").status
                #expect(status == 403, "/not-executable.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/missing.sh").status
                #expect(status == 404, "/missing.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/sub").status
                #expect(status == 403, "/sub")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/").status
                #expect(status == 403, "/")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/sub/inner.sh/more").status
                #expect(status == 200, "/sub/inner.sh/more")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/inside-dir/inner.sh/more").status
                #expect(status == 200, "/inside-dir/inner.sh/more")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/sub/up/secret.sh").status
                #expect(status == 403, "/sub/up/secret.sh")
            }
            do {
                let status = try await RawHTTP.get(server.port, "/inside-dir/up/secret.sh").status
                #expect(status == 403, "/inside-dir/up/secret.sh")
            }
        }
        // The secret script never ran.
        #expect(!FileManager.default.fileExists(atPath: root.path + "/outside/ran"))
    }

    @Test("SCRIPT_FILENAME from the front-end: a file outside the root is 403; inside, or no file at all, the script is served by path")
    func scriptFilename() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        let host = try CGIScriptHost(configuration: CGIScriptHostConfiguration(root: root.path), gatewayEnvironment: [:])
        func environ(_ filename: String) throws -> Environ {
            var builder = EnvironBuilder(gatewayProtocol: .fastcgi)
            for (name, value) in ["REQUEST_METHOD": "GET", "SCRIPT_NAME": "/env.sh", "SCRIPT_FILENAME": filename] {
                builder.addVariable(name: name, value: value)
            }
            return Environ(try builder.finish(), gatewayProtocol: .fastcgi, body: .empty, errors: .discard, flags: GatewayFlags())
        }
        let outside = try await host.respond(to: try environ(root.deletingLastPathComponent().path + "/outside/secret.sh"))
        #expect(outside.status.code == 403)
        let etc = try await host.respond(to: try environ("/etc/passwd"))
        #expect(etc.status.code == 403)
        let inside = try await host.respond(to: try environ(root.path + "/env.sh"))
        #expect(inside.status.code == 200)
        // Names no file: Apache mod_proxy_fcgi's pseudo-filename, a front-end's own document root.
        for nothing in ["proxy:fcgi://127.0.0.1:9000/env.sh", "/var/www/html/env.sh"] {
            let response = try await host.respond(to: try environ(nothing))
            #expect(response.status.code == 200, "SCRIPT_FILENAME \(nothing)")
            #expect(try await collect(response).contains("SCRIPT_FILENAME=\(CGIScriptResolver.realPath(root.path)!)/env.sh"))
        }
        let collected = try await collect(inside)
        #expect(collected.contains("SCRIPT_FILENAME=\(CGIScriptResolver.realPath(root.path)!)/env.sh"))
    }

    @Test("a script past --cgi-timeout: 504, SIGTERM then SIGKILL, its whole process group gone and reaped")
    func timeout() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("postern-sleep-\(getpid()).pid").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        try await LiveServer.withHost(
            gatewayEnvironment: ["PIDFILE": pidFile],
            {
                $0.timeoutSeconds = 1
                $0.killGraceSeconds = 0.3
                $0.passEnvironment = ["PIDFILE"]
            }
        ) { server in
            let start = ContinuousClock.now
            let response = try await RawHTTP.get(server.port, "/sleep.sh")
            #expect(response.status == 504)
            // The script sleeps 30 s: well under that means --cgi-timeout (1 s) stopped it.
            #expect(ContinuousClock.now - start < .seconds(15))
            let pidText = try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let pid = try #require(Int32(pidText))
            var gone = false
            for _ in 0..<100 {
                if kill(pid, 0) != 0 && errno == ESRCH && processes(inGroup: pid).isEmpty {
                    gone = true
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(gone, "the script (pid \(pid)) or its `sleep` still exists")
            #expect(try await lingeringZombies().isEmpty)
        }
    }

    @Test("no valid header block: 502; stderr reaches the error log with the script name")
    func badHeadAndStderr() async throws {
        let log = ErrorLog()
        try await LiveServer.withHost(log: log) { server in
            let response = try await RawHTTP.get(server.port, "/noheader.sh")
            #expect(response.status == 502)
            let created = try await RawHTTP.get(server.port, "/stderr.sh")
            #expect(created.status == 201)
            #expect(created.text == "created\n")
            #expect(await log.eventuallyContains { $0.contains("/stderr.sh: warning from the script") })
            #expect(await log.eventuallyContains { $0.contains("/noheader.sh") })
        }
    }

    @Test("Location: a local path is an internal GET redirect; a URL is a 302")
    func redirects() async throws {
        try await LiveServer.withHost { server in
            let redirected = try await RawHTTP.post(server.port, "/redirect.sh", body: Array("ignored".utf8))
            #expect(redirected.status == 200)
            let variables = parseEnvDump(redirected.text)
            #expect(variables["SCRIPT_NAME"] == "/env.sh")
            #expect(variables["PATH_INFO"] == "/redirected")
            #expect(variables["QUERY_STRING"] == "via=redirect")
            #expect(variables["REQUEST_METHOD"] == "GET")
            #expect(variables["REDIRECT_URL"] == "/redirect.sh")
            #expect(variables["CONTENT_LENGTH"] == nil)
            let external = try await RawHTTP.get(server.port, "/redirect.sh?external")
            #expect(external.status == 302)
            #expect(external.header("Location") == "http://example.com/elsewhere")
        }
    }

    @Test("an internal redirect loop stops at the bound with 500")
    func redirectLoop() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        try await LiveServer.withHost(root: root.path) { server in
            do {
                let status = try await RawHTTP.get(server.port, "/loop.sh").status
                #expect(status == 500, "/loop.sh")
            }
        }
    }

    @Test("nph- scripts: the status line and fields pass through")
    func nph() async throws {
        try await LiveServer.withHost { server in
            let response = try await RawHTTP.get(server.port, "/nph-hello.sh")
            #expect(response.status == 299)
            #expect(response.reason == "Custom Reason")
            #expect(response.header("X-NPH") == "yes")
            #expect(response.text == "nph body\n")
        }
    }

    @Test("--cgi-max-concurrency: an excess request waits, then gets 503; the slot frees when the script ends")
    func concurrency() async throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("postern-busy-\(getpid()).pid").path
        try? FileManager.default.removeItem(atPath: pidFile)
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        try await LiveServer.withHost(
            gatewayEnvironment: ["PIDFILE": pidFile],
            {
                $0.maxConcurrency = 1
                $0.queueWaitSeconds = 0.3
                $0.timeoutSeconds = 5
                $0.killGraceSeconds = 0.2
                $0.passEnvironment = ["PIDFILE"]
            }
        ) { server in
            async let slow = RawHTTP.get(server.port, "/sleep.sh")
            // Wait until the one slot is really taken: the script wrote its pid.
            for _ in 0..<500 where !FileManager.default.fileExists(atPath: pidFile) {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(FileManager.default.fileExists(atPath: pidFile))
            let start = ContinuousClock.now
            let refused = try await RawHTTP.get(server.port, "/env.sh")
            #expect(refused.status == 503)
            #expect(ContinuousClock.now - start >= .milliseconds(250))
            let slowStatus = try await slow.status
            #expect(slowStatus == 504)
            // The slot is free again once the script is stopped and reaped.
            var served = false
            for _ in 0..<40 where !served {
                served = try await RawHTTP.get(server.port, "/env.sh").status == 200
                if !served { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(served)
        }
    }

    @Test("a script inherits no descriptor of the gateway: only stdin, stdout, stderr")
    func noInheritedDescriptors() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        try await LiveServer.withHost(root: root.path) { server in
            let response = try await RawHTTP.get(server.port, "/fds.sh")
            #expect(response.status == 200)
            let descriptors = response.text.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
            #expect(Set(descriptors).isSuperset(of: ["0", "1", "2"]))
            // Python opens /proc/self/fd itself to list it: that one more is allowed, no other.
            #expect(descriptors.filter { !["0", "1", "2"].contains($0) }.count <= 1, "\(response.text)")
            #expect(!response.text.contains("socket:"))
            #expect(!response.text.contains("eventpoll"))
        }
    }

    @Test("a script starts with no signal blocked and SIGPIPE at its default, whatever the gateway's threads do")
    func signalsAtDefault() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        // exec: the shell's own state, read by the program that replaces it (a shell blocks every
        // signal for a moment around a fork, and a forked grep could read that instead).
        try "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nexec grep -E '^Sig(Blk|Ign):' /proc/self/status\n".write(
            toFile: root.path + "/signals.sh", atomically: true, encoding: .utf8)
        chmod(root.path + "/signals.sh", 0o755)
        try await LiveServer.withHost(root: root.path) { server in
            let response = try await RawHTTP.get(server.port, "/signals.sh")
            #expect(response.status == 200)
            let masks = Dictionary(
                uniqueKeysWithValues: response.text.split(separator: "\n").compactMap { line -> (String, UInt64)? in
                    let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
                    guard parts.count == 2, let mask = UInt64(parts[1], radix: 16) else { return nil }
                    return (parts[0], mask)
                })
            // The gateway's threads block every signal while they start a script, and its event
            // loops block most for good; the gateway ignores SIGPIPE (bit 13 - 1).
            #expect(masks["SigBlk"] == 0, "\(response.text)")
            #expect(masks["SigIgn"].map { $0 & (1 << (UInt64(SIGPIPE) - 1)) } == 0, "\(response.text)")
        }
    }

    @Test("a script that cannot be executed (its interpreter is missing): 500, the reason logged, nothing left behind")
    func missingInterpreter() async throws {
        let root = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: root.path) }
        try "#!/nonexistent/interpreter\n".write(toFile: root.path + "/broken.sh", atomically: true, encoding: .utf8)
        chmod(root.path + "/broken.sh", 0o755)
        try await LiveServer.withHost(root: root.path) { server in
            for _ in 0..<3 {
                #expect(try await RawHTTP.get(server.port, "/broken.sh").status == 500)
            }
            // The server goes on serving, and the children that never became the script are reaped.
            #expect(try await RawHTTP.get(server.port, "/env.sh").status == 200)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await lingeringZombies().isEmpty)
        }
    }

    @Test("HEAD: the script's head, no body, and the one slot is free again at once")
    func head() async throws {
        try await LiveServer.withHost({
            $0.maxConcurrency = 1
            $0.queueWaitSeconds = 5
        }) { server in
            for _ in 0..<3 {
                let start = ContinuousClock.now
                let response = try await RawHTTP.send(server.port, head: "HEAD /env.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                #expect(response.status == 200)
                #expect(response.header("Content-Type") == "text/plain")
                #expect(response.body.isEmpty)
                // A held slot would make the next HEAD wait the whole 5 s queue wait and get 503.
                #expect(ContinuousClock.now - start < .seconds(4))
            }
        }
    }

    @Test("many concurrent requests: all answered, no zombies left")
    func noZombies() async throws {
        try await LiveServer.withHost { server in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<24 {
                    group.addTask { try await RawHTTP.get(server.port, index % 2 == 0 ? "/env.sh" : "/noheader.sh").status }
                }
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                #expect(statuses.filter { $0 == 200 }.count == 12)
                #expect(statuses.filter { $0 == 502 }.count == 12)
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await lingeringZombies().isEmpty)
        }
    }

    // MARK: Helpers

    /// A root with escapes to try: a secret script outside, symlinks pointing out and in.
    func makeRoot() throws -> URL {
        let manager = FileManager.default
        let base = manager.temporaryDirectory.appendingPathComponent("postern-cgi-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let root = base.appendingPathComponent("root")
        try manager.createDirectory(at: root.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try manager.createDirectory(at: base.appendingPathComponent("outside"), withIntermediateDirectories: true)
        let scripts = TestPaths.scriptsDirectory
        for name in ["env.sh", "not-executable.sh"] {
            try manager.copyItem(atPath: scripts + "/" + name, toPath: root.path + "/" + name)
        }
        try manager.copyItem(atPath: scripts + "/env.sh", toPath: root.path + "/sub/inner.sh")
        let secret = base.path + "/outside/secret.sh"
        try "#!/bin/sh\ntouch \"\(base.path)/outside/ran\"\nprintf 'Content-Type: text/plain\\r\\n\\r\\nsecret\\n'\n".write(
            toFile: secret, atomically: true, encoding: .utf8)
        chmod(secret, 0o755)
        try "#!/bin/sh\nprintf 'Location: /loop.sh\\r\\n\\r\\n'\n".write(toFile: root.path + "/loop.sh", atomically: true, encoding: .utf8)
        chmod(root.path + "/loop.sh", 0o755)
        try """
        #!/usr/bin/python3
        import os
        print("Content-Type: text/plain\\r\\n\\r\\n", end="")
        for fd in sorted(os.listdir("/proc/self/fd"), key=int):
            try:
                print(fd, os.readlink("/proc/self/fd/" + fd))
            except OSError:
                print(fd, "(closed: the directory listing itself)")

        """.write(toFile: root.path + "/fds.sh", atomically: true, encoding: .utf8)
        chmod(root.path + "/fds.sh", 0o755)
        try manager.createSymbolicLink(atPath: root.path + "/escape.sh", withDestinationPath: secret)
        try manager.createSymbolicLink(atPath: root.path + "/escape-dir", withDestinationPath: base.path + "/outside")
        try manager.createSymbolicLink(atPath: root.path + "/inside-link.sh", withDestinationPath: "env.sh")
        // A directory reached through a link inside the root, and a relative link out of it
        // from there (each symlink on the way is resolved and checked, whatever led to it).
        try manager.createSymbolicLink(atPath: root.path + "/inside-dir", withDestinationPath: "sub")
        try manager.createSymbolicLink(atPath: root.path + "/sub/up", withDestinationPath: "../../outside")
        return root
    }

    func collect(_ response: Response) async throws -> String {
        final class Collector: ResponseBodyWriter, @unchecked Sendable {
            let bytes = LockedBox<[UInt8]>([])
            func write(_ buffer: ByteBuffer) async throws { bytes.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) } }
        }
        let collector = Collector()
        try await response.body.write(to: collector)
        return String(decoding: collector.bytes.withLockedValue { $0 }, as: UTF8.self)
    }
}
