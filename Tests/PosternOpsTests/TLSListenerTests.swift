// TLS listeners, live: `postern serve --https` (and mutual TLS, a TLS listener under a master)
// reached with the real curl, certificates made with the real openssl; the files' errors; the
// variables mod_ssl names.
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Postern
import PosternCore
import PosternEngine
import PosternTestSupport
import Testing

@testable import PosternRuntime

extension Ops {
    @Suite("TLS listeners", .serialized)
    struct TLSListenerTests {
        /// `postern serve --app environ` with `arguments` (which give the listeners), and the
        /// port `--https` is on.
        static func serve(_ label: String, _ arguments: (Int) -> [String]) async throws -> (ManagedProcess, Int, String) {
            let directory = try Paths.makeTestDirectory(label)
            let port = try Ports.free()
            let process = try ManagedProcess(
                name: "postern", executable: Paths.binary("postern"), arguments: ["serve", "--app", "environ", "--log-level", "info"] + arguments(port),
                directory: directory)
            try await Wait.forPort(port)
            return (process, port, directory)
        }

        /// `postern serve` through ``OpsServer`` (a status listener unless `statusPort` is false)
        /// with an `--https` listener on certificates made for it and `extra` arguments, once
        /// that listener is up: the server, its TLS port, the certificates, the test directory.
        static func httpsUnderOps(_ label: String, _ extra: [String] = [], statusPort: Bool = true) async throws -> (
            OpsServer, Int, TestCertificates, String
        ) {
            let directory = try Paths.makeTestDirectory(label)
            let made = try TestCertificates.make(in: directory)
            let tlsPort = try Ports.free()
            let server = try await OpsServer.start(
                "\(label)-serve",
                ["--https", "127.0.0.1:\(tlsPort)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey] + extra,
                statusPort: statusPort)
            do {
                try await Wait.forPort(tlsPort)
            } catch {
                server.process.stop()
                throw error
            }
            return (server, tlsPort, made, directory)
        }

        static func environ(_ body: String) throws -> [String: String] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String] else {
                throw TestFailure("not the environ's JSON: \(body)")
            }
            return object
        }

        @Test("each bad file is one error naming the option, the file and why; a good pair makes a context")
        func filesAreChecked() throws {
            let directory = try Paths.makeTestDirectory("tls-files")
            let made = try TestCertificates.make(in: directory)
            let empty = directory + "/empty.pem"
            let garbage = directory + "/garbage.pem"
            try "".write(toFile: empty, atomically: true, encoding: .utf8)
            try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
            func failure(_ settings: TLSSettings) -> String? {
                do {
                    _ = try settings.makeContext()
                    return nil
                } catch {
                    return error.description
                }
            }
            #expect(failure(TLSSettings(certificate: made.serverCertificate, key: made.serverKey, clientCA: made.ca)) == nil)
            let missing = failure(TLSSettings(certificate: directory + "/nope.pem", key: made.serverKey))
            #expect(missing?.hasPrefix("--tls-certificate \(directory)/nope.pem: cannot read it") == true, "\(missing ?? "no error")")
            #expect(failure(TLSSettings(certificate: empty, key: made.serverKey)) == "--tls-certificate \(empty): the file is empty")
            let notPEM = failure(TLSSettings(certificate: garbage, key: made.serverKey))
            #expect(notPEM?.hasPrefix("--tls-certificate \(garbage): ") == true, "\(notPEM ?? "no error")")
            #expect(failure(TLSSettings(certificate: made.serverCertificate, key: garbage))?.hasPrefix("--tls-key \(garbage): not an unencrypted PEM") == true)
            let mismatch = failure(TLSSettings(certificate: made.serverCertificate, key: made.clientKey))
            #expect(
                mismatch?.hasPrefix("--tls-key \(made.clientKey) is not the key of --tls-certificate \(made.serverCertificate)") == true,
                "\(mismatch ?? "no error")")
            // A CA file with a key in it and no certificate.
            let noCA = failure(TLSSettings(certificate: made.serverCertificate, key: made.serverKey, clientCA: made.clientKey))
            #expect(noCA?.hasPrefix("--tls-client-ca \(made.clientKey): ") == true, "\(noCA ?? "no error")")
            #expect(
                failure(TLSSettings(certificate: made.serverCertificate, key: made.serverKey, clientCA: empty)) == "--tls-client-ca \(empty): the file is empty"
            )
        }

        @Test("a bad certificate at start: exit status 64, one line naming the file, nothing listening")
        func badFileAtStart() async throws {
            let directory = try Paths.makeTestDirectory("tls-bad-start")
            let made = try TestCertificates.make(in: directory)
            for workers in ["1", "2"] {
                let port = try Ports.free()
                let result = try await PosternCommand.run([
                    "serve", "--https", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.clientKey, "--workers", workers,
                ])
                #expect(result.status == 64, "--workers \(workers): \(result.error)")
                #expect(result.error.contains("--tls-key \(made.clientKey) is not the key of --tls-certificate"), "\(result.error)")
                #expect(LoopbackProbe.connect(port: port).map { close($0) } == nil, "something listens on \(port)")
            }
            let noKey = try await PosternCommand.run(["serve", "--https", "127.0.0.1:\(try Ports.free())"])
            #expect(noKey.status == 64 && noKey.error.contains("--https needs --tls-certificate FILE and --tls-key FILE"), "\(noKey.error)")
            let check = try await PosternCommand.run([
                "serve", "--check-config", "--suwsgi", "127.0.0.1:9", "--tls-certificate", directory + "/none.pem", "--tls-key", made.serverKey,
            ])
            #expect(check.status == 64 && check.error.contains("--tls-certificate \(directory)/none.pem: cannot read it"), "\(check.error)")
        }

        @Test("--https: curl gets the app over TLS, which sees HTTPS=on and mod_ssl's variables; plaintext is closed, logged at most once a second")
        func https() async throws {
            let directory = try Paths.makeTestDirectory("tls-https")
            let made = try TestCertificates.make(in: directory)
            let (server, port, _) = try await Self.serve("tls-https-serve") { port in
                ["--https", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey, "--header-timeout", "1"]
            }
            defer { server.stop() }
            let answer = try runCurl(["-v", "--cacert", made.ca, "https://localhost:\(port)/path?q=1"])
            #expect(answer.status == 0, "\(answer.error)")
            let environ = try Self.environ(answer.output)
            // The cipher the client says it negotiated ("SSL connection using TLSv1.3 / NAME").
            func cipher(_ said: String) -> String? {
                said.split(whereSeparator: \.isNewline).first { $0.contains("SSL connection using") }.flatMap {
                    $0.components(separatedBy: " / ").last.map { String($0.split(separator: " ")[0]) }
                }
            }
            #expect(environ["SSL_CIPHER"] != nil && environ["SSL_CIPHER"] == cipher(answer.error), "\(answer.error)")
            #expect(environ["SSL_CIPHER_USEKEYSIZE"] == "256" || environ["SSL_CIPHER_USEKEYSIZE"] == "128")
            #expect(environ["SSL_CIPHER_ALGKEYSIZE"] == environ["SSL_CIPHER_USEKEYSIZE"])
            // With AES instructions the server picks TLS 1.3's AES-128 suite, though curl (OpenSSL)
            // asks for AES-256 with SHA-384 first (postern_tls_server_defaults).
            if (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" aes ") == true {
                #expect(environ["SSL_CIPHER"] == "TLS_AES_128_GCM_SHA256")
            }
            #expect(environ["HTTPS"] == "on")
            #expect(environ["REQUEST_SCHEME"] == "https")
            #expect(environ["gateway.url_scheme"] == "https")
            #expect(environ["SSL_PROTOCOL"] == "TLSv1.3")
            #expect(environ["SSL_CLIENT_VERIFY"] == "NONE")
            #expect(environ["PATH_INFO"] == "/path" && environ["QUERY_STRING"] == "q=1")
            let twelve = try runCurl(["-v", "--cacert", made.ca, "--tls-max", "1.2", "https://localhost:\(port)/"])
            #expect(try Self.environ(twelve.output)["SSL_PROTOCOL"] == "TLSv1.2", "\(twelve.error)")
            let twelveCipher = try Self.environ(twelve.output)["SSL_CIPHER"]
            #expect(twelveCipher?.hasPrefix("ECDHE-ECDSA-") == true && twelveCipher == cipher(twelve.error), "\(twelve.error)")
            // In TLS 1.2 too, the server's order: AES-128 (SHA-256 PRF) though the client asks
            // for AES-256 (SHA-384 PRF) first, as OpenSSL's default list and nginx's to a backend do.
            if (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains(" aes ") == true {
                let asked = try runCurl([
                    "-v", "--cacert", made.ca, "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
                    "https://localhost:\(port)/",
                ])
                #expect(try Self.environ(asked.output)["SSL_CIPHER"] == "ECDHE-ECDSA-AES128-GCM-SHA256", "\(asked.error)")
            }
            // A client that does not trust the CA refuses the server (the server is not at fault).
            #expect(try runCurl(["https://localhost:\(port)/"]).status != 0)
            // Plaintext on the TLS port: closed, no answer; five in a row make one line a second
            // (after a pause: the refused handshake above was logged, and the next is due 1 s on).
            try await Task.sleep(for: .milliseconds(1100))
            let plainStart = ContinuousClock.now
            for _ in 0..<5 {
                let plain = try runCurl(["http://127.0.0.1:\(port)/"])
                #expect(plain.status != 0 && plain.output.isEmpty, "\(plain.output)")
            }
            let again = try runCurl(["--cacert", made.ca, "https://localhost:\(port)/"])
            #expect(again.status == 0, "the server serves on after plaintext clients: \(again.error)")
            let seconds = Int((ContinuousClock.now - plainStart).components.seconds)
            let lines = server.output.components(separatedBy: "\n").filter {
                $0.contains("TLS handshake failed") && $0.contains("reason=the client spoke plaintext HTTP")
            }
            #expect((1...(seconds + 1)).contains(lines.count), "\(lines.count) lines in \(seconds)+ s: \(lines)")
            // A handshake that stalls (half a ClientHello, then nothing) is closed by --header-timeout.
            let started = ContinuousClock.now
            let stalled = try BlockingClient.connectTCP(port: port)
            defer { close(stalled) }
            var limit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(stalled, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            try BlockingClient.sendAll(stalled, [0x16, 0x03, 0x01, 0x00])
            let left = BlockingClient.readAll(stalled)
            let waited = ContinuousClock.now - started
            #expect(left.isEmpty && waited < .seconds(5), "closed after \(waited), \(left.count) bytes")
        }

        @Test("--tls-min-version 1.3 refuses a TLS 1.2 client")
        func minimumVersion() async throws {
            let directory = try Paths.makeTestDirectory("tls-min")
            let made = try TestCertificates.make(in: directory)
            let (server, port, _) = try await Self.serve("tls-min-serve") { port in
                ["--https", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey, "--tls-min-version", "1.3"]
            }
            defer { server.stop() }
            #expect(try runCurl(["--cacert", made.ca, "--tls-max", "1.2", "https://localhost:\(port)/"]).status != 0)
            #expect(try runCurl(["--cacert", made.ca, "https://localhost:\(port)/"]).status == 0)
        }

        @Test("--tls-client-ca: no certificate or another CA's is refused; the CA's client is served, its subject in SSL_CLIENT_S_DN")
        func mutualTLS() async throws {
            let directory = try Paths.makeTestDirectory("tls-mutual")
            let made = try TestCertificates.make(in: directory)
            let (server, port, _) = try await Self.serve("tls-mutual-serve") { port in
                [
                    "--https", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey, "--tls-client-ca", made.ca,
                    "--workers", "2",
                ]
            }
            defer { server.stop() }
            let url = "https://localhost:\(port)/"
            #expect(try runCurl(["--cacert", made.ca, url]).status != 0, "served without a client certificate")
            #expect(
                try runCurl(["--cacert", made.ca, "--cert", made.otherClientCertificate, "--key", made.otherClientKey, url]).status != 0,
                "served another CA's client")
            let answer = try runCurl(["--cacert", made.ca, "--cert", made.clientCertificate, "--key", made.clientKey, url])
            #expect(answer.status == 0, "\(answer.error)")
            let environ = try Self.environ(answer.output)
            #expect(environ["SSL_CLIENT_VERIFY"] == "SUCCESS")
            #expect(environ["SSL_CLIENT_S_DN"] == "CN=client\\, the first,O=Postern Test")
            #expect(environ["SSL_CLIENT_I_DN"] == "CN=Postern Test CA,O=Postern Test")
            let serial = try TestCertificates.serial(of: made.clientCertificate)
            #expect(environ["SSL_CLIENT_M_SERIAL"] == serial, "openssl says \(serial)")
        }

        @Test("a certificate renewed by rename and SIGHUP: new connections get it, no request fails; a broken one keeps the old serving")
        func renewal() async throws {
            let (server, tlsPort, made, directory) = try await Self.httpsUnderOps("tls-renewal", ["--workers", "2"])
            defer { server.process.stop() }
            let first = try TestCertificates.serial(of: made.serverCertificate)
            #expect(try TestCertificates.servedSerial(port: tlsPort) == first)
            let load = Load(port: server.port, clients: 4)
            let renewed = try made.issueServer(named: "renewed")
            let second = try TestCertificates.serial(of: renewed.certificate)
            #expect(second != first)
            // Key first, then certificate, each by rename (as a deploy tool does).
            #expect(rename(renewed.key, made.serverKey) == 0 && rename(renewed.certificate, made.serverCertificate) == 0)
            server.signal(SIGHUP)
            #expect(
                await eventually(20) { await ReloadSafetyTests.lastReload(server)["outcome"] as? String == "succeeded" },
                "\(server.process.output.suffix(1500))")
            #expect(await eventually(10) { (try? TestCertificates.servedSerial(port: tlsPort)) == second }, "still serving the old certificate")
            let answer = try runCurl(["--cacert", made.ca, "https://localhost:\(tlsPort)/hello"])
            #expect(answer.status == 0, "\(answer.error)")

            // A broken replacement: the reload fails, the workers serving the renewed file stay.
            try "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n".write(toFile: directory + "/broken.pem", atomically: true, encoding: .utf8)
            #expect(rename(directory + "/broken.pem", made.serverCertificate) == 0)
            server.signal(SIGHUP)
            #expect(
                await eventually(20) {
                    let reload = await ReloadSafetyTests.lastReload(server)
                    return reload["outcome"] as? String == "failed" && reload["generation"] as? Int == 2
                }, "\(server.process.output.suffix(1500))")
            #expect(try TestCertificates.servedSerial(port: tlsPort) == second)
            let result = await load.finish()
            #expect(result.failed == 0 && result.sent > 50, "failed \(result.failed) of \(result.sent): \(result.examples)")
        }

        /// One `GET /pid` over a new TLS connection from `openssl s_client` (TLS `version`: `-tls1_3` or
        /// `-tls1_2`), saving the session to `sessionOut` or offering the one in `sessionIn`: whether
        /// the server resumed it, the pid of the process that answered, and how many TLS 1.3
        /// session tickets came after the handshake.
        static func resumption(port: Int, ca: String, version: String, sessionOut: String? = nil, sessionIn: String? = nil) throws -> (
            reused: Bool?, pid: Int?, tickets: Int
        ) {
            // The request from a file, not a pipe from printf: what a pipe in `sh` becomes depends
            // on the descriptors the test process was started with.
            let request = NSTemporaryDirectory() + "/postern-pid-request-\(getpid())"
            try "GET /pid HTTP/1.0\r\n\r\n".write(toFile: request, atomically: true, encoding: .utf8)
            var command = "openssl s_client -connect 127.0.0.1:\(port) -servername localhost -CAfile \(ca) \(version) -ign_eof"
            if let sessionOut { command += " -sess_out \(sessionOut)" }
            if let sessionIn { command += " -sess_in \(sessionIn)" }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", command + " < \(request) 2>/dev/null"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            // The HTTP head's lines end in CR LF, one Character in Swift: split on any newline.
            let lines = said.split(whereSeparator: \.isNewline)
            let reused: Bool? =
                lines.contains { $0.hasPrefix("Reused, ") } ? true : lines.contains { $0.hasPrefix("New, ") } ? false : nil
            let pid = lines.first { $0.hasPrefix("pid ") }.flatMap { Int($0.dropFirst(4).trimmingCharacters(in: .whitespaces)) }
            return (reused, pid, lines.filter { $0.hasPrefix("Post-Handshake New Session Ticket arrived") }.count)
        }

        @Test("the ticket keys: swift-nio-ssl's SSL_CTX is found; each period's key is the same in every process, and another the next period")
        func ticketKeys() throws {
            let directory = try Paths.makeTestDirectory("tls-ticket-keys")
            let made = try TestCertificates.make(in: directory)
            // A plain NIOSSLContext: the property the keys are attached through is still there.
            let context = try TLSSettings(certificate: made.serverCertificate, key: made.serverKey).makeContext()
            #expect(context.boringSSLContext != nil, "swift-nio-ssl's NIOSSLContext no longer has `sslContext`")
            TLSTicketKeys.use(secret: TLSTicketKeys.makeSecret())
            let loaded = try TLSSettings(certificate: made.serverCertificate, key: made.serverKey).load()
            #expect(loaded.sharesTicketKeys)
            #expect(TLSTicketKeys.use(secret: [1, 2, 3]) == false)
            func key(_ epoch: UInt64) -> [UInt8] { TLSTicketKeys.keyMaterial(epoch: epoch) ?? [] }
            #expect(key(7) == key(7))
            #expect(key(7) != key(8) && key(7).prefix(16) != key(8).prefix(16))
            #expect(Set([key(7)[0..<16], key(7)[16..<32], key(7)[32..<48]]).count == 3)
            let secrets = (0..<4).map { _ in TLSTicketKeys.makeSecret() }
            #expect(Set(secrets).count == 4 && secrets.allSatisfy { $0.count == TLSTicketKeys.secretBytes })
            // What a master hands a worker comes through the pipe whole.
            let pipe = try #require(TLSTicketKeys.pipe(holding: secrets[0]))
            #expect(TLSTicketKeys.readSecret(from: pipe) == secrets[0])
        }

        @Test(
            "with --workers, a session resumes on another worker, after a reload and after an upgrade (one ticket secret); the status page counts resumed handshakes"
        )
        func sharedTicketKeys() async throws {
            let (server, tlsPort, made, directory) = try await Self.httpsUnderOps("tls-tickets", ["--workers", "2"])
            defer { server.process.stop() }
            let versions = ["-tls1_3", "-tls1_2"]
            var issuers: [Int] = []
            for version in versions {
                let first = try Self.resumption(port: tlsPort, ca: made.ca, version: version, sessionOut: "\(directory)/session\(version)")
                #expect(first.reused == false, "\(version): the first connection has no session to resume")
                // One ticket is enough for a front-end, which keeps one session per backend.
                if version == "-tls1_3" { #expect(first.tickets == 1) }
                issuers.append(try #require(first.pid))
            }
            // A reload replaces every worker: a session can only resume on a process that did not issue it.
            server.signal(SIGHUP)
            #expect(
                await eventually(30) {
                    guard await ReloadSafetyTests.lastReload(server)["outcome"] as? String == "succeeded" else { return false }
                    return (try? await server.workerPIDs()).map { $0.isDisjoint(with: issuers) && $0.count == 2 } ?? false
                }, "\(server.process.output.suffix(1500))")
            var resumed = 0
            for version in versions {
                for _ in 0..<3 {
                    let again = try Self.resumption(port: tlsPort, ca: made.ca, version: version, sessionIn: "\(directory)/session\(version)")
                    #expect(again.reused == true, "\(version): the session was not resumed by worker \(again.pid ?? 0)")
                    #expect(again.pid != nil && !issuers.contains(again.pid!))
                    if again.reused == true { resumed += 1 }
                }
            }
            #expect(await eventually(10) { ((try? await server.status())?["tls_sessions_resumed"] as? Int ?? 0) >= resumed })
            let counted = (try await server.status())["tls_sessions_resumed"] as? Int ?? 0
            #expect(counted >= resumed, "the status page counts \(counted) resumed handshakes, \(resumed) made")

            // A SIGUSR2 upgrade: the master executes its binary again and hands the new image the
            // secret, whose workers then resume the same sessions.
            let beforeUpgrade = try await server.workerPIDs()
            server.signal(SIGUSR2)
            #expect(
                await eventually(30) {
                    guard server.process.output.contains("SIGUSR2: upgrading in place") else { return false }
                    return (try? await server.workerPIDs()).map { $0.isDisjoint(with: beforeUpgrade) && $0.count == 2 } ?? false
                }, "\(server.process.output.suffix(1500))")
            for version in versions {
                let again = try Self.resumption(port: tlsPort, ca: made.ca, version: version, sessionIn: "\(directory)/session\(version)")
                #expect(again.reused == true, "\(version): not resumed after the upgrade, by worker \(again.pid ?? 0)")
            }
        }

        @Test("a single process reloaded in place (SIGHUP) hands its ticket secret to its next image: its sessions resume")
        func ticketKeysAcrossReload() async throws {
            let (server, tlsPort, made, directory) = try await Self.httpsUnderOps("tls-tickets-single", statusPort: false)
            defer { server.process.stop() }
            func images() -> Int {
                server.process.output.split(whereSeparator: \.isNewline).filter { $0.contains("protocol=https") && $0.hasSuffix("listening") }.count
            }
            let session = "\(directory)/session"
            let first = try Self.resumption(port: tlsPort, ca: made.ca, version: "-tls1_3", sessionOut: session)
            #expect(first.reused == false && first.pid != nil)
            #expect(images() == 1)
            server.signal(SIGHUP)
            #expect(await eventually(30) { images() == 2 }, "\(server.process.output.suffix(1500))")
            let again = try Self.resumption(port: tlsPort, ca: made.ca, version: "-tls1_3", sessionIn: session)
            #expect(again.reused == true, "not resumed after the reload: \(server.process.output.suffix(800))")
            #expect(again.pid == first.pid, "a reload in place keeps the process")
        }

        @Test("postern request speaks every TLS listener (https, suwsgi, fastcgi-tls) with --cacert, --cert and --key")
        func requestCommand() async throws {
            let directory = try Paths.makeTestDirectory("tls-request")
            let made = try TestCertificates.make(in: directory)
            let suwsgi = try Ports.free()
            let fastcgi = try Ports.free()
            let (server, https, _) = try await Self.serve("tls-request-serve") { port in
                [
                    "--https", "127.0.0.1:\(port)", "--suwsgi", "127.0.0.1:\(suwsgi)", "--fastcgi-tls", "127.0.0.1:\(fastcgi)", "--tls-certificate",
                    made.serverCertificate, "--tls-key", made.serverKey, "--tls-client-ca", made.ca,
                ]
            }
            defer { server.stop() }
            try await Wait.forPort(fastcgi)
            let client = ["--cacert", made.ca, "--cert", made.clientCertificate, "--key", made.clientKey, "--body-only"]
            for (url, expected) in [
                ("https://localhost:\(https)/one", "http"), ("suwsgi://127.0.0.1:\(suwsgi)/two", "uwsgi"),
                ("fastcgi-tls://localhost:\(fastcgi)/three", "fastcgi"),
            ] {
                let result = try await PosternCommand.run(["request"] + client + [url])
                #expect(result.status == 0, "\(url): \(result.error)")
                let environ = try Self.environ(result.output)
                #expect(environ["gateway.protocol"] == expected, "\(url)")
                // The hop's handshake, on every TLS listener, under gateway.tls_*; mod_ssl's
                // variables only where the TLS peer is the user (--https), never behind a
                // front-end's TLS, whose own HTTPS and SSL_* describe the user's connection.
                #expect(environ["gateway.tls_peer_s_dn"] == "CN=client\\, the first,O=Postern Test", "\(url): \(environ)")
                #expect(environ["gateway.tls_peer_i_dn"] == "CN=Postern Test CA,O=Postern Test", "\(url)")
                #expect(environ["gateway.tls_peer_verify"] == "SUCCESS" && environ["gateway.tls_protocol"] == "TLSv1.3", "\(url)")
                #expect(environ["gateway.tls_peer_serial"] == (try TestCertificates.serial(of: made.clientCertificate)), "\(url)")
                #expect((environ["SSL_CLIENT_S_DN"] != nil) == (expected == "http"), "\(url)")
                #expect((environ["HTTPS"] != nil) == (expected == "http"), "\(url)")
            }
            // Without a client certificate the server refuses the handshake: one line, exit 1.
            let refused = try await PosternCommand.run(["request", "--cacert", made.ca, "https://localhost:\(https)/"])
            #expect(refused.status == 1 && !refused.error.isEmpty, "\(refused)")
            // A CA that did not sign the server's certificate: the client refuses the server.
            let untrusted = try await PosternCommand.run(["request", "--cacert", made.otherCA] + client.dropFirst(2) + ["https://localhost:\(https)/"])
            #expect(untrusted.status == 1, "\(untrusted)")
        }

        @Test(
            "the status page and /metrics count handshakes (completed, failed) and show the certificate's expiry, alone and summed by a master",
            arguments: [1, 2])
        func statusShowsTLS(workers: Int) async throws {
            let directory = try Paths.makeTestDirectory("tls-status")
            let made = try TestCertificates.make(in: directory)
            let status = try Ports.free()
            let (server, port, _) = try await Self.serve("tls-status-serve") { port in
                [
                    "--https", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey, "--status",
                    "127.0.0.1:\(status)", "--workers", "\(workers)",
                ]
            }
            defer { server.stop() }
            try await Wait.forPort(status)
            let before = try await Self.statusJSON(status)
            for _ in 0..<3 { #expect(try runCurl(["--cacert", made.ca, "https://localhost:\(port)/"]).status == 0) }
            #expect(try runCurl(["http://127.0.0.1:\(port)/"]).status != 0)  // plaintext: a failed handshake
            let expected = (before["tls_handshakes"] as? Int ?? -1) + 3
            let counted = await eventually {
                let now = try? await Self.statusJSON(status)
                return now?["tls_handshakes"] as? Int == expected && (now?["tls_handshake_failures"] as? Int ?? 0) >= 1
            }
            let after = try await Self.statusJSON(status)
            #expect(counted, "\(after)")
            // The test certificates are valid for two days.
            let left = after["tls_certificate_expires_in"] as? Int ?? -1
            #expect((2 * 86_400 - 600...2 * 86_400).contains(left), "\(after)")
            // notAfter=2026-12-08 18:20:00Z: the same second.
            let line = try TestCertificates.openssl(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", made.serverCertificate])
            let date = ISO8601DateFormatter().date(
                from: line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "notAfter=", with: "").replacingOccurrences(
                    of: " ", with: "T"))
            #expect(date.map { Int($0.timeIntervalSince1970) } == after["tls_certificate_not_after"] as? Int, "\(line) \(after)")
            let metrics = try runCurl(["http://127.0.0.1:\(status)/metrics"]).output
            #expect(metrics.contains("postern_tls_handshakes_total \(expected)"), "\(metrics)")
            #expect(metrics.contains("postern_tls_handshake_failures_total "), "\(metrics)")
            #expect(metrics.contains("postern_tls_certificate_expiry_seconds "), "\(metrics)")
        }

        static func statusJSON(_ port: Int) async throws -> [String: Any] {
            let body = try runCurl(["-s", "http://127.0.0.1:\(port)/"]).output
            guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw TestFailure("not the status JSON: \(body)")
            }
            return object
        }

        @Test("suwsgi: a response's last record and the close_notify alert leave in one write (TLS 1.2, where the alert's type is in the clear)")
        func responseEndAndCloseNotifyTogether() async throws {
            let directory = try Paths.makeTestDirectory("tls-cork")
            let made = try TestCertificates.make(in: directory)
            let (server, port, _) = try await Self.serve("tls-cork-serve") { port in
                ["--suwsgi", "127.0.0.1:\(port)", "--tls-certificate", made.serverCertificate, "--tls-key", made.serverKey]
            }
            defer { server.stop() }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            configuration.maximumTLSVersion = .tlsv12
            configuration.trustRoots = .file(made.ca)
            let context = try NIOSSLContext(configuration: configuration)
            // Two writes land in two reads unless the client is slow to read the first: over
            // ten connections, a server that writes them apart shows it.
            for attempt in 1...10 {
                let reads = try await SocketReads.exchange(
                    port: port, context: context, request: RequestBytes.request(.uwsgi, path: "/cork"))
                let records = SocketReads.records(in: reads)
                guard let alert = records.lastIndex(where: { $0.type == 21 }), alert > 0 else {
                    throw TestFailure("attempt \(attempt): no close_notify after the response: \(records)")
                }
                #expect(records[alert - 1].type == 23, "attempt \(attempt): \(records)")
                #expect(records[alert - 1].read == records[alert].read, "attempt \(attempt): the response's end and the alert came apart: \(records)")
            }
        }

        @Test("suwsgi: a 16 MiB body in hand reaches a reader slower than --idle-timeout whole (its close waits for it)")
        func bigResponseToASlowReader() async throws {
            let directory = try Paths.makeTestDirectory("tls-big")
            let made = try TestCertificates.make(in: directory)
            // More than the kernel's socket buffers hold (the client's is made small below).
            let size = 16 << 20
            var limits = GatewayLimits()
            limits.idleTimeoutSeconds = 1
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let (ready, bound) = AsyncStream<[SocketAddress?]>.makeStream()
            let server = GatewayServer(
                listeners: [ListenerSpec(.suwsgi, .tcp(host: "127.0.0.1", port: 0))],
                configuration: GatewayConfiguration(application: BigBody(size: size), limits: limits, logger: logger),
                onReady: { addresses in
                    bound.yield(addresses)
                    bound.finish()
                },
                tls: try TLSSettings(certificate: made.serverCertificate, key: made.serverKey).makeContext())
            let running = Task { try await server.run() }
            defer { running.cancel() }
            var addresses = ready.makeAsyncIterator()
            guard let port = await addresses.next()?.first??.port else { throw TestFailure("the gateway did not start") }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(made.ca)
            // 64 KiB a read, one read every 10 ms: about 2.6 s for the whole body.
            let received = try await SocketReads.exchange(
                port: port, context: try NIOSSLContext(configuration: configuration), request: RequestBytes.request(.uwsgi, path: "/big"),
                readEvery: .milliseconds(10))
            let text = String(decoding: received, as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(80))")
            #expect(received.count > size && received.suffix(size).allSatisfy { $0 == UInt8(ascii: "x") }, "\(received.count) bytes")
        }

        @Test(
            "a context waits at most 100 ms for the peer's close_notify (swift-nio-ssl's 5 s kept closed connections' TLS state alive); suwsgi's does not wait"
        )
        func shortShutdownWait() throws {
            let directory = try Paths.makeTestDirectory("tls-shutdown")
            let made = try TestCertificates.make(in: directory)
            let context = try TLSSettings(certificate: made.serverCertificate, key: made.serverKey).makeContext()
            #expect(context.configuration.shutdownTimeout == .milliseconds(100))
            let oneRequest = try #require(TLSSettings.closingAtOnce(context))
            #expect(oneRequest.configuration.shutdownTimeout == .zero)
            #expect(oneRequest.configuration.minimumTLSVersion == context.configuration.minimumTLSVersion)
            #expect(context.configuration.renegotiationSupport == .none)
        }

        @Test("mod_ssl's DN and serial formats")
        func distinguishedNames() {
            #expect(DistinguishedName.rfc2253([("C", "DE"), ("O", "A, B"), ("CN", "x+y")]) == "CN=x\\+y,O=A\\, B,C=DE")
            #expect(DistinguishedName.escaped("#lead and trail ") == "\\#lead and trail\\ ")
            #expect(DistinguishedName.escaped("a\"b<c>d;e\\f") == "a\\\"b\\<c\\>d\\;e\\\\f")
            #expect(DistinguishedName.serial([0x00, 0x1f, 0x02]) == "1F02")
            #expect(DistinguishedName.serial([0x00]) == "00")
        }
    }
}

/// A TLS client's socket reads as they came, before the TLS handler: which read each record of
/// the server's arrived in.
final class SocketReads: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only.
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var reads: [[UInt8]] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.append(Array(buffer: unwrapInboundIn(data)))
        context.fireChannelRead(data)
    }

    /// Connects over TLS, sends `request`, reads (one read every `interval`, 64 KiB each: a
    /// slow reader) until the server has closed the connection, and returns the plaintext.
    static func exchange(port: Int, context: NIOSSLContext, request: [UInt8], readEvery interval: TimeAmount) async throws -> [UInt8] {
        let plaintext = Plaintext()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 1024))
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: 64 * 1024)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try channel.pipeline.syncOperations.addHandler(plaintext)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        // Not awaited: the handshake before it needs the reads below.
        channel.writeAndFlush(ByteBuffer(bytes: request), promise: nil)
        while channel.isActive {
            channel.read()
            try await Task.sleep(for: .milliseconds(interval.nanoseconds / 1_000_000))
        }
        try await channel.closeFuture.get()
        return try await channel.eventLoop.submit { plaintext.bytes }.get()
    }

    /// Connects over TLS, sends `request`, and returns the socket's reads once the server has
    /// closed the connection.
    static func exchange(port: Int, context: NIOSSLContext, request: [UInt8]) async throws -> [[UInt8]] {
        let recorder = SocketReads()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(recorder)
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: request)).get()
        try await channel.closeFuture.get()
        return try await channel.eventLoop.submit { recorder.reads }.get()
    }

    /// The TLS records (RFC 5246 §6.2.1: type, version, 16-bit length) in `reads`, each with its
    /// content type and the read its last byte came in.
    static func records(in reads: [[UInt8]]) -> [(type: UInt8, read: Int)] {
        var stream: [UInt8] = []
        var readOfByte: [Int] = []
        for (index, read) in reads.enumerated() {
            stream += read
            readOfByte += Array(repeating: index, count: read.count)
        }
        var records: [(type: UInt8, read: Int)] = []
        var offset = 0
        while offset + 5 <= stream.count {
            let end = offset + 5 + Int(stream[offset + 3]) << 8 + Int(stream[offset + 4])
            guard end <= stream.count else { break }
            records.append((stream[offset], readOfByte[end - 1]))
            offset = end
        }
        return records
    }
}

/// What a TLS client's handler passes on: the plaintext, gathered.
final class Plaintext: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: used on its channel's event loop only.
    typealias InboundIn = ByteBuffer
    private(set) var bytes: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A body of `size` bytes ("x"), in hand.
struct BigBody: Application {
    let size: Int

    func respond(to environ: Environ) async throws -> Response {
        Response(body: ResponseBody(bytes: repeatElement(UInt8(ascii: "x"), count: size)))
    }
}
