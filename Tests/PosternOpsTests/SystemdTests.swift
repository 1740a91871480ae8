// systemd, live: socket activation through systemd-socket-activate, sd_notify to a NOTIFY_SOCKET
// the test listens on, and the shipped unit files checked by systemd-analyze.
import Foundation
import NIOCore
import PosternCLI
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

extension Ops {
    @Suite("systemd", .serialized)
    struct SystemdTests {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
        static let activate = "/usr/bin/systemd-socket-activate"

        /// A unix datagram socket for sd_notify messages, read on a thread of its own.
        final class NotifySocket: @unchecked Sendable {
            let path: String
            private let fd: Int32
            private let lock = NSLock()
            private var received: [String] = []
            private var stopped = false

            init(directory: String) throws {
                path = directory + "/notify.sock"
                fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
                var address = sockaddr_un()
                address.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &address.sun_path) { raw in
                    for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
                }
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
                guard bound == 0 else { throw TestFailure("bind \(path): errno \(errno)") }
                var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                Thread.detachNewThread { [self] in
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    // The thread closes the socket itself once stopped: closed from outside, its
                    // number could be reused by the next test's socket while this thread still reads.
                    while !lock.withLock({ stopped }) {
                        let count = recv(fd, &buffer, buffer.count, 0)
                        if count > 0 { lock.withLock { received.append(String(decoding: buffer[..<count], as: UTF8.self)) } }
                    }
                    Glibc.close(fd)
                }
            }

            var messages: [String] { lock.withLock { received } }

            /// Whether a message containing `text` arrives within `seconds`; its index after `after`.
            func waitFor(_ text: String, after: Int = 0, seconds: Double = 15) async -> Int? {
                let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
                while ContinuousClock.now < deadline {
                    let all = messages
                    if let index = all.indices.first(where: { $0 >= after && all[$0].contains(text) }) { return index }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                return nil
            }

            func close() { lock.withLock { stopped = true } }
        }

        @Test("socket activation: the sockets systemd opened, named by protocol, served by one process or by workers", arguments: [1, 2])
        func socketActivation(workers: Int) async throws {
            let fastcgiPort = try Ports.free()
            let httpPort = try Ports.free()
            let directory = try Paths.makeTestDirectory("socket-activation")
            let process = try ManagedProcess(
                name: "systemd-socket-activate", executable: Self.activate,
                arguments: [
                    "-l", "127.0.0.1:\(fastcgiPort)", "--fdname=fastcgi", "-l", "127.0.0.1:\(httpPort)", "--fdname=http",
                    // systemd-socket-activate passes only the variables given with -E. As root,
                    // without --user or --allow-root: the inherited sockets are TCP on loopback
                    // (getsockname says so), which root may serve, as a loopback flag may.
                    "-E", "POSTERN_APP=hello", Paths.binary("postern"), "serve", "--workers", String(workers),
                ],
                directory: directory)
            defer { process.stop() }
            try await Wait.forPort(httpPort)
            // The first connection started postern, which finds the sockets as fd 3 and 4.
            var answer = (status: 0, body: "")
            for _ in 0..<50 where answer.status != 200 {
                answer = await OpsServer.get(port: httpPort, "/")
                if answer.status != 200 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(
                answer.status == 200 && answer.body.contains("Hello, World!"), "HTTP through the activated socket: \(answer) \(process.output.suffix(1500))")
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let result = try await client.send(ClientRequest(method: "GET", target: "/"))
            #expect(String(buffer: result.stdout).contains("Hello, World!"), "FastCGI through the activated socket")
            // A single process names the socket's address; a master and its workers the descriptor.
            let named = workers == 1 ? "address=127.0.0.1:\(fastcgiPort) protocol=fastcgi" : "address=fd:3"
            #expect(process.output.contains(named) && process.output.contains("protocol=fastcgi"), "\(process.output.suffix(1500))")
            if workers > 1 {
                #expect(process.output.components(separatedBy: "worker started").count - 1 >= workers)
            }
        }

        @Test("socket activation of TLS listeners: FileDescriptorName=https and suwsgi, served over TLS by one process or by workers", arguments: [1, 2])
        func socketActivationTLS(workers: Int) async throws {
            let httpsPort = try Ports.free()
            let suwsgiPort = try Ports.free()
            let directory = try Paths.makeTestDirectory("socket-activation-tls")
            let made = try TestCertificates.make(in: directory)
            let process = try ManagedProcess(
                name: "systemd-socket-activate", executable: Self.activate,
                arguments: [
                    "-l", "127.0.0.1:\(httpsPort)", "--fdname=https", "-l", "127.0.0.1:\(suwsgiPort)", "--fdname=suwsgi", "-E", "POSTERN_APP=environ",
                    Paths.binary("postern"), "serve", "--workers", String(workers), "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey,
                ],
                directory: directory)
            defer { process.stop() }
            try await Wait.forPort(httpsPort)
            var answer = (status: Int32(-1), output: "", error: "")
            for _ in 0..<50 where answer.status != 0 {
                answer = try runCurl(["--cacert", made.ca, "https://localhost:\(httpsPort)/activated"])
                if answer.status != 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(answer.status == 0, "\(answer) \(process.output.suffix(1500))")
            #expect((try? Ops.TLSListenerTests.environ(answer.output))?["HTTPS"] == "on", "\(answer.output)")
            let target = try ClientTarget(parsing: "suwsgi://localhost:\(suwsgiPort)/over-suwsgi")
            let response = try await ProtocolClients.send(
                ClientRequest(method: "GET", target: target.requestTarget), to: target, tls: ClientTLS(caFile: made.ca))
            #expect(response.status.code == 200 && String(buffer: response.body).contains("/over-suwsgi"), "\(String(buffer: response.body))")
        }

        @Test("socket activation: a socket not named by its protocol is one clear error")
        func unnamedSocket() async throws {
            let port = try Ports.free()
            let directory = try Paths.makeTestDirectory("socket-activation-unnamed")
            let process = try ManagedProcess(
                name: "systemd-socket-activate", executable: Self.activate,
                arguments: ["-l", "127.0.0.1:\(port)", "-E", "POSTERN_ALLOW_ROOT=true", Paths.binary("postern"), "serve"], directory: directory)
            defer { process.stop() }
            try await Wait.forPort(port)
            _ = await OpsServer.get(port: port, "/")
            let said = await eventually { process.output.contains("name each socket by its protocol") }
            #expect(said, "\(process.output.suffix(1500))")
        }

        @Test(
            "sd_notify from a single process: READY=1 with a status once it listens, WATCHDOG=1, RELOADING=1 then READY=1 on SIGHUP (same pid), STOPPING=1 on SIGTERM"
        )
        func notifySingle() async throws {
            let directory = try Paths.makeTestDirectory("notify-single")
            let notify = try NotifySocket(directory: directory)
            defer { notify.close() }
            let environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"]) { $1 }
            let server = try await OpsServer.start("notify-single", [], statusPort: false, environment: environment)
            defer { server.process.stop() }
            let ready = await notify.waitFor("READY=1")
            #expect(ready != nil, "no READY=1: \(notify.messages)")
            #expect(notify.messages.contains { $0.contains("READY=1") && $0.contains("STATUS=serving on 127.0.0.1:\(server.port)") })
            #expect(await notify.waitFor("WATCHDOG=1", after: ready ?? 0, seconds: 5) != nil, "no WATCHDOG=1 with WATCHDOG_USEC=400000: \(notify.messages)")
            #expect(await server.get("/hello").status == 200)
            // A reload in place (Type=notify-reload): RELOADING=1, then READY=1 from the new image.
            server.signal(SIGHUP)
            let reloading = await notify.waitFor("RELOADING=1", after: ready ?? 0, seconds: 10)
            #expect(reloading != nil, "no RELOADING=1 on SIGHUP: \(notify.messages)")
            #expect(notify.messages.contains { $0.contains("RELOADING=1") && $0.contains("MONOTONIC_USEC=") })
            #expect(await notify.waitFor("READY=1", after: reloading ?? 0, seconds: 10) != nil, "no READY=1 after the reload: \(notify.messages)")
            #expect(!notify.messages.contains { $0.contains("STOPPING=1") }, "a reload said STOPPING=1: \(notify.messages)")
            #expect(notify.messages.contains { $0.contains("MAINPID=\(server.process.pid)") })
            #expect(await server.get("/hello").status == 200)
            server.signal(SIGTERM)
            #expect(await notify.waitFor("STOPPING=1") != nil, "no STOPPING=1: \(notify.messages)")
            #expect(await server.waitForExit(seconds: 15) == 0)
        }

        @Test("sd_notify from a master: READY=1 once its workers serve, RELOADING=1 with MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1")
        func notifyMaster() async throws {
            let directory = try Paths.makeTestDirectory("notify-master")
            let notify = try NotifySocket(directory: directory)
            defer { notify.close() }
            let environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": notify.path]) { $1 }
            let deploy = try ReloadSafetyTests.Deploy("notify-master-binary")
            let server = try await OpsServer.start("notify-master", ["--workers", "2"], binary: deploy.binary, environment: environment)
            defer { server.process.stop() }
            let ready = await notify.waitFor("READY=1")
            #expect(ready != nil, "no READY=1: \(notify.messages)")
            #expect(notify.messages.contains { $0.contains("READY=1") && $0.contains("2 of 2 workers serving") }, "\(notify.messages)")
            server.signal(SIGHUP)
            let reloading = await notify.waitFor("RELOADING=1", after: (ready ?? 0) + 1)
            #expect(reloading != nil, "no RELOADING=1: \(notify.messages)")
            if let reloading { #expect(notify.messages[reloading].contains("MONOTONIC_USEC=")) }
            let reloaded = await notify.waitFor("READY=1", after: (reloading ?? 0) + 1)
            #expect(reloaded != nil, "no READY=1 after the reload: \(notify.messages)")
            // A reload that fails (a broken binary): RELOADING=1, then READY=1 again with why.
            try deploy.installBroken()
            server.signal(SIGHUP)
            let failing = await notify.waitFor("RELOADING=1", after: (reloaded ?? 0) + 1)
            #expect(failing != nil, "no RELOADING=1 for the second reload: \(notify.messages)")
            let failed = await notify.waitFor("READY=1", after: (failing ?? 0) + 1)
            #expect(failed.map { notify.messages[$0].contains("STATUS=reload failed, the previous workers serve") } == true, "\(notify.messages)")
            server.signal(SIGTERM)
            #expect(await notify.waitFor("STOPPING=1") != nil, "no STOPPING=1: \(notify.messages)")
            #expect(!server.process.output.contains("NOTIFY_SOCKET"), "a worker tried to notify")
        }

        @Test("the shipped unit files pass systemd-analyze verify, and the example configuration parses")
        func unitFiles() throws {
            let directory = try Paths.makeTestDirectory("units")
            let service = try String(contentsOfFile: Self.root + "/systemd/postern.service", encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/postern", with: Paths.binary("postern"))
            try service.write(toFile: directory + "/postern.service", atomically: true, encoding: .utf8)
            try FileManager.default.copyItem(atPath: Self.root + "/systemd/postern.socket", toPath: directory + "/postern.socket")
            let verify = try runToEnd("/usr/bin/systemd-analyze", ["verify", directory + "/postern.socket", directory + "/postern.service"])
            #expect(verify.status == 0 && verify.output.isEmpty, "systemd-analyze verify: \(verify.output)")
            let socket = try String(contentsOfFile: Self.root + "/systemd/postern.socket", encoding: .utf8)
            for line in socket.split(separator: "\n") where line.hasPrefix("FileDescriptorName=") {
                #expect(GatewayProtocol(rawValue: String(line.dropFirst("FileDescriptorName=".count))) != nil, "\(line)")
            }
            let printed = try ConfigurationTests.run(["serve", "--config", Self.root + "/systemd/postern.json", "--print-config"])
            #expect(printed.status == 0, "\(printed.output)")
            #expect(printed.output.contains("workers = 2    # file"))
            // Installed as it is, the unit serves a harmless page, never a demo that echoes the
            // request's variables back; and its configuration passes the check a reload runs.
            #expect(printed.output.contains("app = hello    # file"), "\(printed.output)")
            // (The unit's LogsDirectory= makes /var/log/postern; here the log goes to a directory that exists.)
            let shipped = try String(contentsOfFile: Self.root + "/systemd/postern.json", encoding: .utf8)
            #expect(shipped.contains("\"/var/log/postern/access.log\""))
            try shipped.replacingOccurrences(of: "/var/log/postern/", with: directory + "/").write(
                toFile: directory + "/postern.json", atomically: true, encoding: .utf8)
            let checked = try ConfigurationTests.run(["serve", "--config", directory + "/postern.json", "--check-config"])
            #expect(checked.status == 0 && checked.output.contains("configuration OK"), "\(checked.output)")
            let missing = try ConfigurationTests.run(["serve", "--config", Self.root + "/systemd/postern.json", "--check-config"])
            #expect(
                FileManager.default.fileExists(atPath: "/var/log/postern") || missing.output.contains("/var/log/postern does not exist"), "\(missing.output)")
        }
    }
}
