import Foundation
import PosternTestSupport
import Testing

extension Ops {
    /// Workers and signals, live: real `postern serve --workers N` processes under load.
    @Suite(.serialized) struct WorkerTests {
        @Test func killedWorkerIsReplacedUnderLoad() async throws {
            let server = try await OpsServer.start("kill", ["--workers", "2"])
            defer { server.process.stop() }
            let before = try await waitForWorkers(server, count: 2)
            let load = Load(port: server.port, clients: 4)
            try await Task.sleep(for: .milliseconds(500))
            let victim = Int32(before.first!)
            kill(victim, SIGKILL)
            var after: Set<Int> = []
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                after = try await server.workerPIDs()
                if after.count == 2 && !after.contains(Int(victim)) { break }
            }
            try await Task.sleep(for: .milliseconds(500))
            let result = await load.finish()
            #expect(after.count == 2, "two workers again: \(after)")
            #expect(!after.contains(Int(victim)))
            #expect(result.sent > 50)
            // Only requests the killed worker held may fail; the rest of the load goes on.
            #expect(result.failed <= 4, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect(server.process.output.contains("worker died; replacing it"))
            let restarts = try await server.status()["worker_restarts"] as? Int
            #expect(restarts == 1)
        }

        @Test("a worker gets its listeners as descriptors 3, 4, … (the master's copies closed in it past them, by posix_spawn, not by a sweep)")
        func workerDescriptors() async throws {
            let scgi = try Ports.free()
            let server = try await OpsServer.start("worker-fds", ["--workers", "2", "--scgi", "127.0.0.1:\(scgi)"])
            defer { server.process.stop() }
            let workers = try await waitForWorkers(server, count: 2)
            let httpSocket = try #require(ProcFS.listeningInode(port: server.port))
            let scgiSocket = try #require(ProcFS.listeningInode(port: scgi))
            for pid in workers {
                #expect(ProcFS.descriptor(3, of: pid) == "socket:[\(httpSocket)]", "worker \(pid)")
                #expect(ProcFS.descriptor(4, of: pid) == "socket:[\(scgiSocket)]", "worker \(pid)")
            }
            let answer = try await PosternCommand.run(["request", "scgi://127.0.0.1:\(scgi)/hello"])
            #expect(answer.output.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }

        @Test func sighupUnderLoadDropsNothing() async throws {
            let server = try await OpsServer.start("hup", ["--workers", "2"])
            defer { server.process.stop() }
            let before = try await waitForWorkers(server, count: 2)
            let load = Load(port: server.port, clients: 8)
            try await Task.sleep(for: .milliseconds(700))
            server.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(1500))
            server.signal(SIGHUP)
            try await Task.sleep(for: .milliseconds(1500))
            let result = await load.finish()
            let after = try await waitForWorkers(server, count: 2)
            print("SIGHUP under load: \(result.sent) requests sent, \(result.failed) failed (2 reloads, 8 clients, --workers 2)")
            #expect(result.failed == 0, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect(result.sent > 200)
            #expect(before.isDisjoint(with: after), "new workers after the reload: \(before) → \(after)")
        }

        @Test func sigtermLetsInFlightRequestsFinish() async throws {
            let server = try await OpsServer.start("term", ["--workers", "2"])
            defer { server.process.stop() }
            _ = try await waitForWorkers(server, count: 2)
            let requests = (0..<6).map { _ in Task { await server.get("/sleep?ms=1500") } }
            try await Task.sleep(for: .milliseconds(400))
            server.signal(SIGTERM)
            var codes: [Int] = []
            for request in requests { codes.append(await request.value.status) }
            #expect(codes == Array(repeating: 200, count: 6), "\(codes)")
            let exit = await server.waitForExit(seconds: 10)
            #expect(exit == 0)
        }

        @Test func maxRequestsRecyclesWithoutFailures() async throws {
            let server = try await OpsServer.start("recycle", ["--workers", "2", "--max-requests", "40", "--max-requests-jitter", "10"])
            defer { server.process.stop() }
            let before = try await waitForWorkers(server, count: 2)
            let load = Load(port: server.port, clients: 4, limit: 600)
            let result = await load.drain()
            try await Task.sleep(for: .milliseconds(500))
            let status = try await server.status()
            print("--max-requests 40 under load: \(result.sent) sent, \(result.failed) failed, \(status["worker_restarts"] ?? "?") recycled")
            #expect(result.failed == 0, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect((status["worker_restarts"] as? Int ?? 0) >= 8)
            #expect((status["requests"] as? Int ?? 0) >= 600)
            let after = try await waitForWorkers(server, count: 2)
            #expect(before.isDisjoint(with: after))
        }

        @Test("--max-worker-lifetime and --max-worker-rss recycle workers under load without a failed request")
        func lifetimeAndMemoryRecycleWithoutFailures() async throws {
            for (label, flags, logged) in [
                ("recycle-lifetime", ["--max-worker-lifetime", "2"], "served for --max-worker-lifetime 2.0 s; draining and leaving"),
                // 1 MiB: every worker is over it, so each leaves within a second or two of starting.
                ("recycle-rss", ["--max-worker-rss", "1"], "is over --max-worker-rss 1 MiB; draining and leaving"),
            ] {
                let server = try await OpsServer.start(label, ["--workers", "2"] + flags)
                defer { server.process.stop() }
                let before = try await waitForWorkers(server, count: 2)
                let load = Load(port: server.port, clients: 4)
                try await Task.sleep(for: .seconds(5))
                let result = await load.finish()
                #expect(result.failed == 0, "\(label): failed \(result.failed) of \(result.sent): \(result.examples)")
                #expect(result.sent > 100, "\(label): \(result.sent) sent")
                let status = try await server.status()
                #expect((status["worker_restarts"] as? Int ?? 0) >= 2, "\(label): \(status)")
                #expect(try await eventually { try await server.workerPIDs().count == 2 })
                #expect(try await server.workerPIDs().isDisjoint(with: before), "\(label): the first workers were all replaced")
                #expect(server.process.output.contains(logged), "\(label): \(server.process.output.suffix(2000))")
            }
        }

        /// What `/proc/PID/exe` names.
        private func executable(of pid: Int) -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
        }

        /// Gone, or a zombie nobody has reaped yet (its parent died; PID 1 reaps when it can).
        private func isGone(_ pid: Int) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
            return stat.contains(") Z ")
        }

        @Test func aReloadStartsTheBinaryNowAtThePathItWasStartedFrom() async throws {
            let directory = try Paths.makeTestDirectory("upgrade")
            let binary = directory + "/postern"
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary)
            let server = try await OpsServer.start("upgrade", ["--workers", "2"], binary: binary)
            defer { server.process.stop() }
            let before = try await waitForWorkers(server, count: 2)
            for pid in before { #expect(executable(of: pid) == binary) }
            // A deploy as install(1) and dpkg do it: the new file is renamed over the old one.
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary + ".new")
            #expect(rename(binary + ".new", binary) == 0)
            for pid in before { #expect(executable(of: pid) == binary + " (deleted)") }
            server.signal(SIGHUP)
            var after: Set<Int> = []
            for _ in 0..<100 {
                try await Task.sleep(for: .milliseconds(100))
                after = try await server.workerPIDs()
                if after.count == 2 && after.isDisjoint(with: before) { break }
            }
            #expect(after.count == 2 && after.isDisjoint(with: before), "new workers after SIGHUP: \(after), before \(before)")
            for pid in after {
                #expect(executable(of: pid) == binary, "worker \(pid) runs \(executable(of: pid)), not the new binary")
            }
            #expect(await server.get("/hello").status == 200)
        }

        @Test func sigusr2UpgradesInPlaceUnderLoadWithoutAFailedRequest() async throws {
            let directory = try Paths.makeTestDirectory("usr2")
            let binary = directory + "/postern"
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary)
            let server = try await OpsServer.start("usr2", ["--workers", "2"], binary: binary)
            defer { server.process.stop() }
            let master = server.process.pid
            let before = try await waitForWorkers(server, count: 2)
            let load = Load(port: server.port, clients: 8)
            try await Task.sleep(for: .milliseconds(700))
            // The new binary arrives as a deploy installs it, then SIGUSR2.
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary + ".new")
            #expect(rename(binary + ".new", binary) == 0)
            #expect(executable(of: Int(master)) == binary + " (deleted)")
            server.signal(SIGUSR2)
            var after: Set<Int> = []
            for _ in 0..<200 {
                try await Task.sleep(for: .milliseconds(100))
                after = (try? await server.workerPIDs()) ?? []
                if after.count == 2 && after.isDisjoint(with: before) { break }
            }
            try await Task.sleep(for: .milliseconds(700))
            let result = await load.finish()
            #expect(
                after.count == 2 && after.isDisjoint(with: before),
                "new workers after SIGUSR2: \(after), before \(before): \(server.process.output.suffix(1500))")
            #expect(result.sent > 50)
            #expect(result.failed == 0, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect(server.process.isRunning && server.process.pid == master)
            #expect(executable(of: Int(master)) == binary, "the master runs \(executable(of: Int(master))), not the new binary")
            for pid in after { #expect(executable(of: pid) == binary) }
            #expect(server.process.output.contains("upgraded in place"))
        }

        @Test func workersLeaveWhenTheMasterIsKilled() async throws {
            let server = try await OpsServer.start("orphaned", ["--workers", "2"])
            defer { server.process.stop() }
            let workers = try await waitForWorkers(server, count: 2)
            kill(server.process.pid, SIGKILL)
            var left: Set<Int> = workers
            for _ in 0..<100 where !left.isEmpty {
                try await Task.sleep(for: .milliseconds(100))
                left = left.filter { !isGone($0) }
            }
            #expect(left.isEmpty, "workers \(left) outlived their master")
        }

        private func waitForWorkers(_ server: OpsServer, count: Int) async throws -> Set<Int> {
            for _ in 0..<100 {
                let pids = try await server.workerPIDs()
                if pids.count == count { return pids }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestFailure("not \(count) workers after 10 s: \(server.process.output.suffix(2000))")
        }
    }
}
