// `postern emperor`, live: real app processes from real files in a directory, real signals,
// connections that wait in the emperor's sockets while an app is away.
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Emperor", .serialized)
    struct EmperorTests {
        /// A running `postern emperor DIR --status ADDR` and its directory of app files.
        struct Emperor {
            let process: ManagedProcess
            let apps: String
            let statusPort: Int

            /// - Parameter environment: added to the test's; with `statusInEnvironment`, the status
            ///   address goes as `POSTERN_STATUS` instead of `--status`.
            static func start(
                _ label: String, files: [String: String] = [:], arguments: [String] = [], environment: [String: String] = [:],
                statusInEnvironment: Bool = false
            ) async throws -> Emperor {
                let directory = try Paths.makeTestDirectory(label)
                let apps = directory + "/apps"
                try FileManager.default.createDirectory(atPath: apps, withIntermediateDirectories: true)
                for (name, json) in files { try json.write(toFile: "\(apps)/\(name).json", atomically: true, encoding: .utf8) }
                let statusPort = try Ports.free()
                // The emperor reads POSTERN_* as its own options: the tests' POSTERN_ALLOW_ROOT
                // (for the servers they start) is not for it.
                var variables = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("POSTERN_") }.merging(environment) { $1 }
                var status = ["--status", "127.0.0.1:\(statusPort)"]
                if statusInEnvironment {
                    variables["POSTERN_STATUS"] = "127.0.0.1:\(statusPort)"
                    status = []
                }
                let process = try ManagedProcess(
                    name: "postern-emperor", executable: Paths.binary("postern"),
                    arguments: ["emperor", apps] + status + ["--run-dir", directory + "/run"] + arguments, environment: variables,
                    directory: directory)
                try await Wait.forPort(statusPort)
                return Emperor(process: process, apps: apps, statusPort: statusPort)
            }

            func write(_ name: String, _ json: String) throws {
                try json.write(toFile: "\(apps)/\(name).json", atomically: true, encoding: .utf8)
            }

            /// The status page's apps, by name.
            func apps() async throws -> [String: [String: Any]] {
                let (code, body) = await OpsServer.get(port: statusPort, "/status")
                guard code == 200, let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                    throw TestFailure("status answered \(code): \(body)")
                }
                #expect(object["mode"] as? String == "emperor")
                let list = object["apps"] as? [[String: Any]] ?? []
                return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "", $0) })
            }

            func app(_ name: String) async -> [String: Any]? { try? await apps()[name] }

            /// Whether the app reaches `state` (and `check` holds for it) within `seconds`.
            func waitFor(_ name: String, _ state: String, seconds: Double = 15, _ check: ([String: Any]) -> Bool = { _ in true }) async -> Bool {
                await eventually(seconds) {
                    guard let app = await app(name) else { return false }
                    return app["state"] as? String == state && check(app)
                }
            }

            func signal(_ number: Int32) { kill(process.pid, number) }

            func waitForExit(seconds: Double) async -> Int32? { await process.waitForExit(seconds: seconds) }
        }

        static func isAlive(_ pid: Int) -> Bool {
            // A zombie (exited, not yet reaped by its parent) counts as gone.
            guard kill(pid_t(pid), 0) == 0 else { return false }
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !stat.contains(") Z ")
        }

        @Test(
            "two apps from files at start; a new file starts within 2 s; an edit under load reloads that app alone with 0 failed requests; a removed file stops it"
        )
        func filesAndEvents() async throws {
            let ports = try (0..<4).map { _ in try Ports.free() }
            let emperor = try await Emperor.start(
                "emperor-events",
                files: [
                    "one": #"{"app": "ops", "http": "127.0.0.1:\#(ports[0])"}"#,
                    "two": #"{"app": "ops", "http": "127.0.0.1:\#(ports[1])", "workers": 2, "timeout": 0.2}"#,
                ])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("one", "ready"), "\(emperor.process.output)")
            #expect(await emperor.waitFor("two", "ready"), "\(emperor.process.output)")
            #expect(await OpsServer.get(port: ports[0], "/hello").status == 200)
            #expect(await OpsServer.get(port: ports[1], "/hello").status == 200)
            let two = try #require(await emperor.app("two"))
            let twoPID = try #require(two["pid"] as? Int)
            #expect((two["listeners"] as? [[String: Any]])?.first?["address"] as? String == "127.0.0.1:\(ports[1])")
            #expect((two["config_hash"] as? String)?.count == 16)
            // Each app's requests, 5xx and workers, from its reports (once a second): a master's
            // over its two workers; a 504 of its --timeout counts as an error.
            #expect(await OpsServer.get(port: ports[1], "/sleep?ms=1000").status == 504)
            let counted = await eventually(5) {
                guard let two = await emperor.app("two") else { return false }
                return two["requests"] as? Int == 2 && two["errors"] as? Int == 1 && two["workers_idle"] as? Int == 2 && two["workers_busy"] as? Int == 0
            }
            let twoNow = await emperor.app("two")
            #expect(counted, "\(String(describing: twoNow))")
            let oneCounted = await eventually(5) { await emperor.app("one")?["requests"] as? Int == 1 }
            let oneNow = await emperor.app("one")
            #expect(oneCounted, "\(String(describing: oneNow))")
            // An app holds none of the emperor's descriptors: not its status page's socket
            // (SwiftNIO opens it without close-on-exec; an app that inherited a status connection
            // held it open after the emperor had answered).
            let statusInode = try #require(ProcFS.listeningInode(port: emperor.statusPort))
            #expect(!ProcFS.socketInodes(of: twoPID).contains(statusInode), "the app inherited the emperor's status socket")
            // Its own socket it has as descriptor 3 (passed by posix_spawn, all else closed).
            #expect(ProcFS.descriptor(3, of: twoPID) == "socket:[\(ProcFS.listeningInode(port: ports[1]) ?? "?")]")
            // The same on /metrics, and in `postern top`.
            let metrics = await OpsServer.get(port: emperor.statusPort, "/metrics")
            #expect(metrics.body.contains("postern_emperor_apps{state=\"ready\"} 2"), "\(metrics.body)")
            #expect(metrics.body.contains("postern_emperor_app_up{app=\"two\"} 1"), "\(metrics.body)")
            #expect(metrics.body.contains("postern_emperor_app_requests_total{app=\"two\"} 2"), "\(metrics.body)")
            #expect(metrics.body.contains("postern_emperor_app_errors_total{app=\"two\"} 1"), "\(metrics.body)")
            #expect(metrics.body.contains("postern_emperor_app_workers{app=\"two\",state=\"idle\"} 2"), "\(metrics.body)")
            let top = try await PosternCommand.run(["top", "http://127.0.0.1:\(emperor.statusPort)/", "--once"])
            #expect(top.status == 0 && top.output.contains("2 apps (2 ready)"), "\(top)")
            #expect(
                top.output.split(separator: "\n").contains {
                    $0.hasPrefix("two ") && $0.contains("ready") && $0.contains(String(twoPID)) && $0.contains(" 0/2 ")
                }, "\(top.output)")

            // A new file: served within 2 s.
            let added = ContinuousClock.now
            try emperor.write("three", #"{"app": "ops", "scgi": "127.0.0.1:\#(ports[2])"}"#)
            #expect(await emperor.waitFor("three", "ready", seconds: 2), "\(emperor.process.output)")
            #expect(ContinuousClock.now - added < .seconds(2))
            let scgi = try await PosternCommand.run(["request", "scgi://127.0.0.1:\(ports[2])/hello"])
            #expect(scgi.output.hasPrefix("HTTP/1.1 200"), "\(scgi)")

            // An edit of one under load: that app reloads (its new option applies), no request
            // fails, and the other apps' processes are untouched.
            let onePID = try #require(await emperor.app("one")?["pid"] as? Int)
            let load = Load(port: ports[0], clients: 4)
            try await Task.sleep(for: .milliseconds(500))
            try emperor.write("one", #"{"app": "ops", "http": "127.0.0.1:\#(ports[0])", "ping-path": "/ping"}"#)
            #expect(await emperor.waitFor("one", "ready") { $0["generation"] as? Int == 2 }, "\(emperor.process.output)")
            try await Task.sleep(for: .milliseconds(500))
            let result = await load.finish()
            #expect(result.failed == 0 && result.sent > 50, "\(result)")
            #expect(await OpsServer.get(port: ports[0], "/ping").body == "pong\n")
            #expect(await emperor.app("one")?["pid"] as? Int == onePID, "reloaded in place")
            // Its reload in place started its counters again; the emperor's count goes on (less
            // the requests in flight as the old image stopped, at most one per client).
            let carried = await eventually(3) { (await emperor.app("one")?["requests"] as? Int ?? 0) >= 1 + result.sent - 4 }
            let oneAfter = await emperor.app("one")
            #expect(carried, "\(String(describing: oneAfter)), \(result)")
            #expect(await emperor.app("two")?["pid"] as? Int == twoPID)
            #expect(await emperor.app("two")?["generation"] as? Int == 1)

            // A touch reloads too (uWSGI's habit).
            FileManager.default.createFile(atPath: "\(emperor.apps)/two.json", contents: try Data(contentsOf: URL(fileURLWithPath: "\(emperor.apps)/two.json")))
            #expect(await emperor.waitFor("two", "ready") { $0["generation"] as? Int == 2 }, "\(emperor.process.output)")

            // Its listener changed: it restarts on the new socket, and the old one closes.
            try emperor.write("three", #"{"app": "ops", "scgi": "127.0.0.1:\#(ports[3])"}"#)
            #expect(await emperor.waitFor("three", "ready") { $0["generation"] as? Int == 2 }, "\(emperor.process.output)")
            let moved = try await PosternCommand.run(["request", "scgi://127.0.0.1:\(ports[3])/hello"])
            #expect(moved.output.hasPrefix("HTTP/1.1 200"), "\(moved)")
            #expect((try? BlockingClient.connectTCP(port: ports[2])).map { close($0) } == nil, "the old socket still accepts")

            // A removed file: the app stops and its socket closes.
            let threePID = try #require(await emperor.app("three")?["pid"] as? Int)
            try FileManager.default.removeItem(atPath: "\(emperor.apps)/three.json")
            #expect(await eventually(5) { await emperor.app("three") == nil && !Self.isAlive(threePID) }, "\(emperor.process.output)")
            #expect((try? BlockingClient.connectTCP(port: ports[3])).map { close($0) } == nil, "the removed app's socket still accepts")
            #expect(await emperor.app("one")?["pid"] as? Int == onePID)
        }

        @Test("a broken file, then a wrong key: the app serves on and the status names the file and the key; the fixed file applies")
        func brokenThenFixed() async throws {
            let port = try Ports.free()
            let emperor = try await Emperor.start("emperor-broken", files: ["shop": #"{"app": "ops", "http": "127.0.0.1:\#(port)"}"#])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("shop", "ready"), "\(emperor.process.output)")
            let pid = try #require(await emperor.app("shop")?["pid"] as? Int)
            try emperor.write("shop", #"{"app": "ops", "http": "127.0.0.1:\#(port)""#)
            #expect(
                await emperor.waitFor("shop", "ready") { ($0["config_error"] as? String)?.contains("\(emperor.apps)/shop.json: not valid JSON") == true },
                "\(emperor.process.output)")
            #expect(await OpsServer.get(port: port, "/hello").status == 200)
            try emperor.write("shop", #"{"app": "ops", "http": "127.0.0.1:\#(port)", "max-conections": 10}"#)
            #expect(
                await emperor.waitFor("shop", "ready") {
                    let error = $0["config_error"] as? String ?? ""
                    return error.hasPrefix("\(emperor.apps)/shop.json: ") && error.contains(#"unknown key "max-conections""#)
                }, "\(emperor.process.output)")
            #expect(emperor.process.output.contains(#"shop.json: unknown key "max-conections""#), "one line naming the file and the key")
            #expect(await OpsServer.get(port: port, "/hello").status == 200)
            #expect(await emperor.app("shop")?["generation"] as? Int == 1, "not reloaded")
            try emperor.write("shop", #"{"app": "ops", "http": "127.0.0.1:\#(port)", "max-connections": 10}"#)
            #expect(await emperor.waitFor("shop", "ready") { $0["config_error"] == nil && $0["generation"] as? Int == 2 }, "\(emperor.process.output)")
            #expect(await emperor.app("shop")?["pid"] as? Int == pid)
            // A new app whose file is bad has no process: config_error.
            try emperor.write("bad", #"{"app": "ops"}"#)
            #expect(await emperor.waitFor("bad", "config_error") { ($0["config_error"] as? String)?.contains("no listener") == true })
        }

        @Test("an app that keeps exiting backs off (1 s, doubling) while the others serve; a touch starts it now")
        func crashLoop() async throws {
            let ports = try (0..<2).map { _ in try Ports.free() }
            let directory = try Paths.makeTestDirectory("emperor-crasher")
            // Passes the check as a Postern binary does, then exits at once.
            let crasher = directory + "/crasher"
            try "#!/bin/sh\ncase \"$*\" in *--check-config*) echo 'configuration OK: crasher/1'; exit 0;; esac\necho 'crashing on purpose' >&2\nexit 3\n"
                .write(toFile: crasher, atomically: true, encoding: .utf8)
            chmod(crasher, 0o755)
            let emperor = try await Emperor.start(
                "emperor-crash",
                files: [
                    "good": #"{"app": "ops", "http": "127.0.0.1:\#(ports[0])"}"#, "bad": #"{"exec": "\#(crasher)", "http": "127.0.0.1:\#(ports[1])"}"#,
                ], arguments: ["--throttle-max", "4"])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("good", "ready"))
            #expect(
                await emperor.waitFor("bad", "backoff") {
                    ($0["crashes"] as? Int ?? 0) >= 3 && ($0["last_exit"] as? String)?.contains("crashing on purpose") == true
                },
                "\(emperor.process.output)")
            let bad = try #require(await emperor.app("bad"))
            #expect((bad["next_attempt"] as? Double ?? 0) > Date().timeIntervalSince1970 - 1)
            #expect(emperor.process.output.contains("bad: exited (exit 3: crashing on purpose); next start in 2 s (2 in a row"))
            #expect(await OpsServer.get(port: ports[0], "/hello").status == 200, "the other app serves")
            // Capped by --throttle-max 4.
            #expect(await eventually(15) { emperor.process.output.contains("next start in 4 s (4 in a row") }, "\(emperor.process.output)")
            #expect(!emperor.process.output.contains("next start in 8 s"))
            // A touch: started now, past its backoff, the count reset.
            try await Task.sleep(for: .milliseconds(300))
            let restarts = try #require(await emperor.app("bad")?["restarts"] as? Int)
            FileManager.default.createFile(atPath: "\(emperor.apps)/bad.json", contents: try Data(contentsOf: URL(fileURLWithPath: "\(emperor.apps)/bad.json")))
            #expect(await eventually(1.5) { (await emperor.app("bad")?["restarts"] as? Int ?? 0) > restarts }, "\(emperor.process.output)")
            #expect(emperor.process.output.contains("bad: touched; starting it now"))
        }

        @Test("an app killed: connections wait in the emperor's socket and its successor serves them")
        func connectionsWait() async throws {
            let port = try Ports.free()
            let emperor = try await Emperor.start("emperor-wait", files: ["one": #"{"app": "ops", "http": "127.0.0.1:\#(port)"}"#])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("one", "ready"))
            let pid = try #require(await emperor.app("one")?["pid"] as? Int)
            kill(pid_t(pid), SIGKILL)
            // Sent while no process serves: it waits in the backlog (1 s backoff, then a start).
            let answer = await OpsServer.get(port: port, "/pid")
            #expect(answer.status == 200, "\(emperor.process.output)")
            #expect(Int(answer.body.trimmingCharacters(in: .whitespacesAndNewlines)) != pid)
            #expect(await emperor.waitFor("one", "ready") { $0["restarts"] as? Int == 1 })
        }

        @Test("SIGTERM stops every app gracefully, then the emperor exits 0; SIGKILL to it: every app leaves")
        func emperorDeath() async throws {
            let ports = try (0..<2).map { _ in try Ports.free() }
            let files = [
                "one": #"{"app": "ops", "http": "127.0.0.1:\#(ports[0])"}"#, "two": #"{"app": "ops", "http": "127.0.0.1:\#(ports[1])", "workers": 2}"#,
            ]
            let emperor = try await Emperor.start("emperor-term", files: files)
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("one", "ready"))
            #expect(await emperor.waitFor("two", "ready"))
            let pids = try await emperor.apps().values.compactMap { $0["pid"] as? Int }
            #expect(pids.count == 2)
            // A slow request in flight finishes before its app stops.
            async let slow = OpsServer.get(port: ports[0], "/sleep?ms=1500")
            try await Task.sleep(for: .milliseconds(300))
            emperor.signal(SIGTERM)
            #expect(await slow.status == 200)
            #expect(await emperor.waitForExit(seconds: 20) == 0, "\(emperor.process.output)")
            #expect(pids.allSatisfy { !Self.isAlive($0) })
            #expect((try? BlockingClient.connectTCP(port: ports[0])).map { close($0) } == nil)

            let killed = try await Emperor.start("emperor-kill", files: files)
            defer { killed.process.stop() }
            #expect(await killed.waitFor("one", "ready"))
            #expect(await killed.waitFor("two", "ready"))
            let orphans = try await killed.apps().values.compactMap { $0["pid"] as? Int }
            killed.signal(SIGKILL)
            #expect(await eventually(10) { orphans.allSatisfy { !Self.isAlive($0) } }, "apps outlived their emperor")
        }

        @Test("on demand: no process until the first connection; idle-exit stops it, and the next connection starts it again, twice; the socket's mode stays")
        func onDemand() async throws {
            let port = try Ports.free()
            let directory = try Paths.makeTestDirectory("emperor-ondemand-sockets")
            let socket = directory + "/cold.sock"
            let emperor = try await Emperor.start(
                "emperor-ondemand",
                files: [
                    "cold":
                        #"{"app": "ops", "http": "127.0.0.1:\#(port)", "uwsgi": "unix:\#(socket)", "socket-mode": "640", "allow-root": true, "on-demand": true, "idle-exit": 1}"#
                ])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("cold", "idle") { $0["pid"] == nil && $0["on_demand"] as? Bool == true }, "\(emperor.process.output)")
            var modes: [mode_t] = []
            var pids: Set<Int> = []
            for round in 1...2 {
                var status = stat()
                #expect(stat(socket, &status) == 0)
                modes.append(status.st_mode & 0o777)
                // The first connection starts it and is served.
                let answer = await OpsServer.get(port: port, "/pid")
                #expect(answer.status == 200, "round \(round): \(emperor.process.output)")
                pids.insert(Int(answer.body.dropFirst(4).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0)
                #expect(await emperor.waitFor("cold", "ready") { $0["cold_starts"] as? Int == round && $0["last_cold_start_ms"] as? Double != nil })
                // No request for a second: it stops by itself and is idle again.
                #expect(await emperor.waitFor("cold", "idle", seconds: 10) { $0["idle_exits"] as? Int == round }, "\(emperor.process.output)")
            }
            #expect(pids.count == 2 && !pids.contains(0), "two processes, one per cold start: \(pids)")
            #expect(modes == [0o640, 0o640])
            let app = try #require(await emperor.app("cold"))
            #expect(app["restarts"] as? Int == 0, "an idle exit is no crash")
            // The unix socket starts it too.
            let uwsgi = try await PosternCommand.run(["request", "uwsgi+unix://\(socket)/hello"])
            #expect(uwsgi.output.hasPrefix("HTTP/1.1 200"), "\(uwsgi)")
        }

        @Test("an app that drops to its \"user\" says READY=1 to the emperor and reloads (its generated file read again as that user)")
        func appAsUser() async throws {
            try #require(getuid() == 0, "as root: the tests run as root in CI")
            let port = try Ports.free()
            let emperor = try await Emperor.start("emperor-user", files: ["shop": #"{"app": "ops", "http": "127.0.0.1:\#(port)", "user": "nobody"}"#])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("shop", "ready"), "\(emperor.process.output)")
            let pid = try #require(await emperor.app("shop")?["pid"] as? Int)
            let owner = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("Uid:") }
            #expect(owner?.split(separator: "\t").dropFirst().first == "65534", "\(owner ?? "")")
            try emperor.write("shop", #"{"app": "ops", "http": "127.0.0.1:\#(port)", "user": "nobody", "ping-path": "/ping"}"#)
            #expect(await emperor.waitFor("shop", "ready") { $0["generation"] as? Int == 2 }, "\(emperor.process.output)")
            #expect(await OpsServer.get(port: port, "/ping").body == "pong\n", "\(emperor.process.output)")
        }

        @Test(
            "--tyrant: each app runs as its file's owner from its start; a root-owned file must name its user; a privileged port is refused; a new owner restarts it"
        )
        func tyrant() async throws {
            try #require(getuid() == 0, "as root: the tests run as root in CI")
            let ports = try (0..<2).map { _ in try Ports.free() }
            let emperor = try await Emperor.start("emperor-tyrant", arguments: ["--tyrant"])
            defer { emperor.process.stop() }
            func write(_ name: String, _ json: String, owner: (uid_t, gid_t)?) throws {
                // Written aside and renamed in, owned already: the emperor never sees it root's.
                let path = "\(emperor.apps)/.\(name).tmp"
                try json.write(toFile: path, atomically: false, encoding: .utf8)
                if let owner { chown(path, owner.0, owner.1) }
                rename(path, "\(emperor.apps)/\(name).json")
            }
            func uid(of pid: Int) -> String? {
                let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                return status?.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first.map(String.init)
            }
            try write("mine", #"{"app": "ops", "http": "127.0.0.1:\#(ports[0])"}"#, owner: (65534, 65534))
            #expect(await emperor.waitFor("mine", "ready") { $0["uid"] as? Int == 65534 }, "\(emperor.process.output)")
            let pid = try #require(await emperor.app("mine")?["pid"] as? Int)
            #expect(uid(of: pid) == "65534")
            #expect(await OpsServer.get(port: ports[0], "/hello").status == 200)

            try write("rootfile", #"{"app": "ops", "http": "127.0.0.1:\#(ports[1])"}"#, owner: nil)
            #expect(await emperor.waitFor("rootfile", "config_error") { ($0["config_error"] as? String)?.contains(#"key "user""#) == true })
            try write("low", #"{"app": "ops", "http": "127.0.0.1:80"}"#, owner: (65534, 65534))
            #expect(await emperor.waitFor("low", "config_error") { ($0["config_error"] as? String)?.contains("port 80 is privileged") == true })
            try write("other", #"{"app": "ops", "http": "127.0.0.1:\#(ports[1])", "user": "root"}"#, owner: (65534, 65534))
            #expect(await emperor.waitFor("other", "config_error") { ($0["config_error"] as? String)?.contains(#"key "user""#) == true })

            // A new owner (daemon, uid 1): the app restarts as it.
            chown("\(emperor.apps)/mine.json", 1, 1)
            #expect(await emperor.waitFor("mine", "ready") { $0["uid"] as? Int == 1 && $0["pid"] as? Int != pid }, "\(emperor.process.output)")
            let next = try #require(await emperor.app("mine")?["pid"] as? Int)
            #expect(uid(of: next) == "1")
            #expect(await OpsServer.get(port: ports[0], "/hello").status == 200)
        }

        @Test(
            "the emperor's own options from POSTERN_* and a --config file (a wrong key: exit 64); --user runs it and its apps as that user; --allow-root lets an app without \"user\" serve as root on a unix socket"
        )
        func emperorOptions() async throws {
            try #require(getuid() == 0, "as root: the tests run as root in CI")
            let directory = try Paths.makeTestDirectory("emperor-options")
            try #"{"log-level": "warning", "bogus": 1}"#.write(toFile: directory + "/bad.json", atomically: true, encoding: .utf8)
            let bad = try await PosternCommand.run(["emperor", directory, "--config", directory + "/bad.json"])
            #expect(bad.status == 64 && bad.error.contains(#"unknown key "bogus""#), "\(bad)")

            // The status address from POSTERN_STATUS, the user from the file.
            let port = try Ports.free()
            try #"{"user": "nobody", "throttle-max": 5}"#.write(toFile: directory + "/emperor.json", atomically: true, encoding: .utf8)
            let asUser = try await Emperor.start(
                "emperor-options-user", files: ["shop": #"{"app": "ops", "http": "127.0.0.1:\#(port)"}"#],
                arguments: ["--config", directory + "/emperor.json", "--error-log", directory + "/emperor-user.log"], statusInEnvironment: true)
            defer { asUser.process.stop() }
            #expect(await asUser.waitFor("shop", "ready"), "\(asUser.process.output)")
            func uid(of pid: Int) -> String? {
                let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                return status?.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().first.map(String.init)
            }
            #expect(uid(of: Int(asUser.process.pid)) == "65534", "the emperor itself runs as nobody")
            let shop = try #require(await asUser.app("shop")?["pid"] as? Int)
            #expect(uid(of: shop) == "65534")
            #expect(await OpsServer.get(port: port, "/hello").status == 200)
            // Its log file was made for it before it became nobody.
            var log = stat()
            #expect(stat(directory + "/emperor-user.log", &log) == 0 && log.st_uid == 65534)
            asUser.process.stop()

            // As root, an app on a unix socket without "user" is refused by its check (its own
            // rule, before anything starts), unless the emperor allows root.
            let socket = directory + "/shop.sock"
            let file = #"{"app": "ops", "scgi": "unix:\#(socket)"}"#
            let refused = try await Emperor.start("emperor-options-root", files: ["shop": file])
            #expect(
                await refused.waitFor("shop", "config_error") { ($0["config_error"] as? String)?.contains("running as root") == true },
                "\(refused.process.output)")
            refused.process.stop()
            let allowed = try await Emperor.start("emperor-options-allowed", files: ["shop": file], environment: ["POSTERN_ALLOW_ROOT": "true"])
            defer { allowed.process.stop() }
            #expect(await allowed.waitFor("shop", "ready"), "\(allowed.process.output)")
            let answer = try await PosternCommand.run(["request", "scgi+unix://\(socket)/hello"])
            #expect(answer.output.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }

        @Test("SIGUSR1 after logrotate: the emperor reopens its --error-log and passes the signal to its apps, which reopen theirs")
        func reopenLogs() async throws {
            let directory = try Paths.makeTestDirectory("emperor-logs")
            let port = try Ports.free()
            let appLog = directory + "/shop.log"
            let emperorLog = directory + "/emperor.log"
            let emperor = try await Emperor.start(
                "emperor-logs", files: ["shop": #"{"app": "ops", "http": "127.0.0.1:\#(port)", "access-log": "\#(appLog)"}"#],
                arguments: ["--error-log", emperorLog])
            defer { emperor.process.stop() }
            #expect(await emperor.waitFor("shop", "ready"), "\(emperor.process.output)")
            let pid = try #require(await emperor.app("shop")?["pid"] as? Int)
            #expect(await OpsServer.get(port: port, "/hello").status == 200)
            // logrotate moves both files away, then signals the emperor alone.
            rename(emperorLog, emperorLog + ".1")
            rename(appLog, appLog + ".1")
            emperor.signal(SIGUSR1)
            #expect(
                await eventually(5) { ((try? String(contentsOfFile: emperorLog, encoding: .utf8)) ?? "").contains("SIGUSR1: the emperor's log reopened") },
                "\(String(describing: try? String(contentsOfFile: emperorLog + ".1", encoding: .utf8)))")
            #expect(await eventually(5) { FileManager.default.fileExists(atPath: appLog) }, "the app did not reopen its access log")
            #expect(await OpsServer.get(port: port, "/hello").status == 200)
            #expect(await eventually(5) { ((try? String(contentsOfFile: appLog, encoding: .utf8)) ?? "").contains("/hello") })
            #expect(await emperor.app("shop")?["pid"] as? Int == pid, "the app was restarted, not signalled")
        }

        @Test("the shipped emperor unit passes systemd-analyze verify")
        func unitFile() throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
            let directory = try Paths.makeTestDirectory("emperor-unit")
            // verify needs the ExecStart binary to exist: the unit's path, made to point at the build.
            var unit = try String(contentsOfFile: root + "/systemd/postern-emperor.service", encoding: .utf8)
            #expect(unit.contains("ExecStart=/usr/local/bin/postern emperor /etc/postern/apps"))
            unit = unit.replacingOccurrences(of: "/usr/local/bin/postern", with: Paths.binary("postern"))
            try unit.write(toFile: directory + "/postern-emperor.service", atomically: true, encoding: .utf8)
            let verify = try runToEnd("/usr/bin/systemd-analyze", ["verify", directory + "/postern-emperor.service"])
            #expect(verify.status == 0 && verify.output.isEmpty, "systemd-analyze verify: \(verify.output)")
        }
    }
}
