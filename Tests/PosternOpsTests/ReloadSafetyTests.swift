// Routine operations that must never take a service down (issue 25), live, with real binaries,
// signals and files: a broken binary installed by rename before SIGHUP or SIGUSR2, workers that
// cannot boot, a crash loop after start, log files under --user rotated by logrotate's way.
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Reloads and upgrades that cannot take a service down", .serialized)
    struct ReloadSafetyTests {
        /// A directory with `postern` as a symlink to the built binary, which a test replaces by
        /// rename (as install(1) and dpkg do) with a broken one and back.
        struct Deploy {
            let directory: String
            var binary: String { directory + "/postern" }

            init(_ label: String) throws {
                directory = try Paths.makeTestDirectory(label)
                try FileManager.default.createSymbolicLink(atPath: binary, withDestinationPath: Paths.binary("postern"))
                let broken = directory + "/broken"
                try "#!/bin/sh\necho \"broken build: cannot load libapp.so\" >&2\nexit 1\n".write(toFile: broken, atomically: true, encoding: .utf8)
                chmod(broken, 0o755)
            }

            /// Points `postern` at `target` by rename: the running processes keep their image.
            func install(_ target: String) throws {
                let staged = directory + "/postern.new"
                try? FileManager.default.removeItem(atPath: staged)
                try FileManager.default.createSymbolicLink(atPath: staged, withDestinationPath: target)
                guard rename(staged, binary) == 0 else { throw TestFailure("rename: \(String(cString: strerror(errno)))") }
            }

            func installBroken() throws { try install(directory + "/broken") }
            func installGood() throws { try install(Paths.binary("postern")) }
        }

        /// Whether `count` workers serve (reported ready: `idle` or `busy`).
        static func serving(_ server: OpsServer, _ count: Int) async -> Bool {
            await eventually(15) { await workers(server).filter { $0.state == "idle" || $0.state == "busy" }.count == count }
        }

        /// The status page's workers: pid and state.
        static func workers(_ server: OpsServer) async -> [(pid: Int, state: String)] {
            let list = ((try? await server.status())?["workers"] as? [[String: Any]]) ?? []
            return list.compactMap { entry in (entry["pid"] as? Int).map { ($0, entry["state"] as? String ?? "") } }
        }

        static func lastReload(_ server: OpsServer) async -> [String: Any] {
            ((try? await server.status())?["last_reload"] as? [String: Any]) ?? [:]
        }

        @Test(
            "SIGHUP with a broken binary under load: no request fails, the old workers serve on; three broken reloads then a good one leave exactly N workers")
        func brokenReloads() async throws {
            let deploy = try Deploy("reload-broken")
            let server = try await OpsServer.start("reload-broken", ["--workers", "3"], binary: deploy.binary)
            defer { server.process.stop() }
            #expect(await Self.serving(server, 3))
            let before = Set(await Self.workers(server).map(\.pid))
            let load = Load(port: server.port, clients: 6)
            try await Task.sleep(for: .milliseconds(500))
            try deploy.installBroken()
            for round in 1...3 {
                server.signal(SIGHUP)
                let failed = await eventually(15) {
                    let reload = await Self.lastReload(server)
                    return reload["generation"] as? Int == round && reload["outcome"] as? String == "failed"
                }
                let reload = await Self.lastReload(server)
                #expect(failed, "reload \(round) not reported failed: \(reload); \(server.process.output.suffix(1500))")
                let workers = await Self.workers(server)
                let serving = Set(workers.filter { $0.state == "idle" || $0.state == "busy" }.map(\.pid))
                #expect(serving.isSuperset(of: before), "an old worker went (or is retiring) in reload \(round): \(workers)")
            }
            let reason = await Self.lastReload(server)["reason"] as? String ?? ""
            #expect(reason.contains("before it was ready") && reason.contains("cannot load libapp.so"), "the reason: \(reason)")
            #expect(server.process.output.contains("reload failed"))
            // Every broken worker is gone; the old ones alone serve.
            let onlyOld = await eventually { Set(await Self.workers(server).map(\.pid)) == before }
            let remaining = await Self.workers(server)
            #expect(onlyOld, "\(remaining)")

            try deploy.installGood()
            server.signal(SIGHUP)
            #expect(await eventually(20) { await Self.lastReload(server)["outcome"] as? String == "succeeded" }, "\(server.process.output.suffix(1500))")
            let settled = await eventually(20) {
                let workers = await Self.workers(server)
                return workers.count == 3 && Set(workers.map(\.pid)).isDisjoint(with: before)
            }
            let afterReload = await Self.workers(server)
            #expect(settled, "exactly 3 new workers: \(afterReload)")
            let result = await load.finish()
            print("broken reloads under load: \(result.sent) requests, \(result.failed) failed")
            #expect(result.failed == 0, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect(result.sent > 100)
            try await Task.sleep(for: .milliseconds(500))
            let final = await Self.workers(server)
            #expect(final.count == 3, "exactly 3 workers after all: \(final)")
        }

        @Test("SIGUSR2 to a master and SIGHUP to a single process with a broken binary: same pid, still serving, nothing failed")
        func brokenUpgrades() async throws {
            let deploy = try Deploy("upgrade-broken")
            let master = try await OpsServer.start("upgrade-broken-master", ["--workers", "2"], binary: deploy.binary)
            defer { master.process.stop() }
            let single = try await OpsServer.start("upgrade-broken-single", [], statusPort: false, binary: deploy.binary)
            defer { single.process.stop() }
            #expect(await Self.serving(master, 2))
            let workers = Set(await Self.workers(master).map(\.pid))
            let loads = [Load(port: master.port, clients: 3), Load(port: single.port, clients: 3)]
            try await Task.sleep(for: .milliseconds(300))
            try deploy.installBroken()
            master.signal(SIGUSR2)
            single.signal(SIGHUP)
            #expect(await eventually(15) { master.process.output.contains("SIGUSR2: not upgrading") }, "\(master.process.output.suffix(1500))")
            #expect(await eventually(15) { single.process.output.contains("SIGHUP: not reloading") }, "\(single.process.output.suffix(1500))")
            #expect(master.process.output.contains("cannot load libapp.so"), "the check's output is in the log")
            single.signal(SIGUSR2)
            #expect(await eventually(15) { single.process.output.components(separatedBy: "not reloading").count - 1 == 2 })
            try await Task.sleep(for: .milliseconds(300))
            for server in [master, single] {
                #expect(server.process.isRunning, "\(server.process.output.suffix(1500))")
                #expect(await server.get("/pid").status == 200)
            }
            #expect(Set(await Self.workers(master).map(\.pid)) == workers, "the master's workers were replaced")
            for (index, load) in loads.enumerated() {
                let result = await load.finish()
                #expect(result.failed == 0, "load \(index): failed \(result.failed) of \(result.sent): \(result.examples)")
                #expect(result.sent > 20)
            }
            // With the good binary back, the same signals upgrade as before.
            try deploy.installGood()
            master.signal(SIGUSR2)
            #expect(await eventually(20) { master.process.output.contains("SIGUSR2: upgrading in place") })
            let replaced = await eventually(20) {
                let now = await Self.workers(master)
                return Set(now.map(\.pid)).isDisjoint(with: workers) && now.count == 2
            }
            #expect(replaced)
            #expect(await master.get("/pid").status == 200)
        }

        @Test("--check-config: a good configuration says the version and exits 0; a bad one names the problem and exits 64; nothing binds")
        func checkConfig() async throws {
            let directory = try Paths.makeTestDirectory("check-config")
            let port = try Ports.free()
            let good = try runToEnd(Paths.binary("postern"), ["serve", "--http", "127.0.0.1:\(port)", "--workers", "2", "--check-config"])
            #expect(good.status == 0, "\(good.output)")
            #expect(good.output.contains("configuration OK: Postern/"), "\(good.output)")
            #expect(throws: (any Error).self) { try BlockingClient.connectTCP(port: port) }
            let file = directory + "/postern.json"
            try #"{"http": ["127.0.0.1:\#(port)"], "error-log": "/nonexistent-dir/error.log"}"#.write(toFile: file, atomically: true, encoding: .utf8)
            let cases: [([String], String)] = [
                (["--config", file, "-t"], "--error-log /nonexistent-dir/error.log: the directory /nonexistent-dir does not exist"),
                (["--http", "127.0.0.1:\(port)", "--user", "no-such-user-here", "-t"], "--user no-such-user-here: no such user"),
                (["--http", "nonsense:port:x", "--check-config"], "nonsense:port:x"),
                (["--http", "no-such-host.invalid:\(port)", "-t"], "--http no-such-host.invalid:\(port): cannot resolve the host"),
                (["--http", "127.0.0.1:\(port)", "--max-connections", "0", "--check-config"], "limits must be positive"),
            ]
            for (arguments, expected) in cases {
                let result = try runToEnd(Paths.binary("postern"), ["serve"] + arguments)
                #expect(result.status == 64, "\(arguments): \(result.status) \(result.output)")
                #expect(result.output.contains(expected), "\(arguments): \(result.output)")
                #expect(!result.output.contains("configuration OK"))
            }
        }

        @Test("a worker that cannot boot: the master stops with the reason and a non-zero status, within seconds")
        func workersCannotBoot() async throws {
            let port = try Ports.free()
            // The master opens no access log; each worker fails to.
            let started = ContinuousClock.now
            let result = try runToEnd(
                Paths.binary("postern"),
                ["serve", "--app", "ops", "--http", "127.0.0.1:\(port)", "--workers", "2", "--access-log", "/nonexistent-dir/access.log"])
            let took = ContinuousClock.now - started
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("workers cannot start: 3 in a row exited before they were ready"), "\(result.output)")
            #expect(result.output.contains("/nonexistent-dir/access.log"), "the worker's own words: \(result.output)")
            #expect(took < .seconds(15), "took \(took)")
        }

        @Test("a crash loop after start: the master answers 503 while no worker serves, then serves again once the binary is fixed")
        func busyWhileNoWorkerServes() async throws {
            let deploy = try Deploy("crash-loop")
            let server = try await OpsServer.start("crash-loop", ["--workers", "2", "--backlog", "300"], binary: deploy.binary)
            defer { server.process.stop() }
            #expect(await Self.serving(server, 2))
            try deploy.installBroken()
            for worker in await Self.workers(server) { kill(Int32(worker.pid), SIGKILL) }
            // Each replacement exits at once; between attempts the master answers.
            var statuses: [Int] = []
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline && !statuses.contains(503) {
                let started = ContinuousClock.now
                let (status, _) = await server.get("/pid")
                statuses.append(status)
                #expect(ContinuousClock.now - started < .seconds(12), "a request waited for a worker that never comes")
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(statuses.contains(503), "statuses: \(statuses); \(server.process.output.suffix(1500))")
            #expect(server.process.output.contains("no worker serves: the master answers every connection 503"))
            #expect(server.process.isRunning)
            // The status page says why (once a broken worker has died: the first deaths are the kills).
            func crashLoop() async -> [String: Any] { ((try? await server.status())?["crash_loop"] as? [String: Any]) ?? [:] }
            let said = await eventually(10) { (await crashLoop()["last"] as? String ?? "").contains("cannot load libapp.so") }
            let loop = await crashLoop()
            #expect(said, "\(loop)")
            #expect((loop["crashes"] as? Int ?? 0) >= 1 && loop["serving"] as? Int == 0, "\(loop)")
            try deploy.installGood()
            #expect(await eventually(25) { await server.get("/pid").status == 200 }, "\(server.process.output.suffix(1500))")
            #expect(await eventually(10) { await Self.workers(server).count == 2 })
            let over = await eventually(10) { ((try? await server.status())?["crash_loop"]) == nil }
            #expect(over, "the crash loop is still reported once the workers serve")
            // The answerer's channels listened on copies of the socket: its --backlog is intact.
            let status = try await server.status()
            #expect(status["listen_queue_len"] as? Int == 300, "\(status["listeners"] ?? "")")
        }

        @Test("--user with --workers 2, --error-log and --access-log as root: no restart, both logs written by the workers; mv and SIGUSR1 rotate both")
        func logFilesUnderUser() async throws {
            guard geteuid() == 0 else { return }
            let nobody = try #require(getpwnam("nobody").map { $0.pointee.pw_uid })
            let directory = try Paths.makeTestDirectory("logs-user")
            let errorLog = directory + "/error.log"
            let accessLog = directory + "/access.log"
            let server = try await OpsServer.start(
                "logs-user", ["--workers", "2", "--user", "nobody", "--error-log", errorLog, "--access-log", accessLog])
            defer { server.process.stop() }
            func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
            func owner(_ path: String) -> UInt32? { (try? FileManager.default.attributesOfItem(atPath: path)[.ownerAccountID] as? NSNumber)?.uint32Value }
            #expect(await Self.serving(server, 2))
            for index in 0..<6 { #expect(await server.get("/before-\(index)").status == 200) }
            #expect(await eventually { contents(accessLog).components(separatedBy: "/before-").count - 1 == 6 }, "\(contents(accessLog))")
            #expect(await eventually { contents(errorLog).contains("worker=") }, "no worker line in the error log: \(contents(errorLog))")
            #expect(owner(errorLog) == nobody && owner(accessLog) == nobody)
            #expect(try await server.status()["worker_restarts"] as? Int == 0, "\(contents(errorLog).suffix(1500))")

            try FileManager.default.moveItem(atPath: errorLog, toPath: errorLog + ".1")
            try FileManager.default.moveItem(atPath: accessLog, toPath: accessLog + ".1")
            server.signal(SIGUSR1)
            #expect(
                await eventually { contents(errorLog).components(separatedBy: "SIGUSR1: logs reopened").count - 1 >= 2 },
                "the new error log: \(contents(errorLog))")
            for index in 0..<6 { #expect(await server.get("/after-\(index)").status == 200) }
            #expect(await eventually { contents(accessLog).components(separatedBy: "/after-").count - 1 == 6 }, "the new access log: \(contents(accessLog))")
            #expect(!contents(accessLog + ".1").contains("/after-"))
            #expect(!contents(errorLog).contains("cannot reopen"), "\(contents(errorLog))")
            #expect(owner(errorLog) == nobody && owner(accessLog) == nobody)
            #expect(try await server.status()["worker_restarts"] as? Int == 0)
        }
    }
}
