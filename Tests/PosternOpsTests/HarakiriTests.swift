// --harakiri, live: a worker whose application blocks its thread is killed and replaced by the
// master within S + 2 s, the log names the request, and the other worker serves meanwhile.
import Foundation
import PosternOps
import PosternTestSupport
import Testing

@testable import Postern

extension Ops {
    @Suite("Harakiri", .serialized)
    struct HarakiriTests {
        /// The pid in an `…/pid` answer ("pid 1234").
        static func pid(_ body: String) -> Int? {
            Int(body.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst("pid ".count))
        }

        @Test(
            "--workers 2 --harakiri 2: a request blocking its thread gets its worker killed and replaced within 4 s, the log names it, the other worker serves meanwhile"
        )
        func blockedWorkerIsKilledAndReplaced() async throws {
            let server = try await OpsServer.start("harakiri", ["--workers", "2", "--harakiri", "2"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            let before = try await server.workerPIDs()
            let sent = ContinuousClock.now
            let blocked = Task { await server.get("/block?ms=30000") }
            let killed = await eventually(8) { server.process.output.contains("harakiri: killing worker") }
            let elapsed = ContinuousClock.now - sent
            #expect(killed, "no harakiri: \(server.process.output.suffix(1500))")
            #expect(elapsed < .seconds(4), "killed after \(elapsed)")
            let line = server.process.output.split(separator: "\n").first { $0.contains("harakiri: killing worker") }.map(String.init) ?? ""
            #expect(line.contains("GET /block?ms=30000"), "the log does not name the request: \(line)")
            #expect(line.contains("(--harakiri 2.0)"), "\(line)")
            let victim = Int(line.components(separatedBy: "killing worker ").last?.prefix { $0.isNumber } ?? "") ?? -1
            #expect(before.contains(victim), "killed \(victim), workers were \(before)")
            // Its client loses the request (as with uWSGI's harakiri): the process is gone.
            #expect(await blocked.value.status != 200)
            // A new worker takes its place at once (no crash backoff); every request succeeds.
            #expect(
                await eventually(5) {
                    let now = (try? await server.workerPIDs()) ?? []
                    return now.count == 2 && !now.contains(victim)
                }, "no replacement: \(server.process.output.suffix(1500))")
            for index in 0..<10 { #expect(await server.get("/after-\(index)").status == 200) }
            #expect(server.process.output.contains("worker killed by --harakiri; replacing it"))
            let status = try await server.status()
            #expect(status["harakiri_kills"] as? Int == 1, "\(status)")
            #expect((status["worker_restarts"] as? Int ?? 0) >= 1)
        }

        @Test("--harakiri 2 while one worker is blocked: the other worker answers")
        func theOtherWorkerServes() async throws {
            let server = try await OpsServer.start("harakiri-other", ["--workers", "2", "--harakiri", "2"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            let blocked = Task { await server.get("/block?ms=30000") }
            // The blocked request reaches its worker; then, until the kill, eight clients ask
            // which process answers. A connection handed to the blocked event loop waits for
            // the kill; the others are answered, by the other worker among them.
            try await Task.sleep(for: .milliseconds(300))
            let answeredBy = await withTaskGroup(of: [Int].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var pids: [Int] = []
                        while !server.process.output.contains("harakiri: killing worker") {
                            let answer = await server.get("/pid")
                            if answer.status == 200, let pid = Self.pid(answer.body) { pids.append(pid) }
                        }
                        return pids
                    }
                }
                return await group.reduce(into: [Int]()) { $0 += $1 }
            }
            _ = await blocked.value
            let line = server.process.output.split(separator: "\n").first { $0.contains("harakiri: killing worker") }.map(String.init) ?? ""
            let victim = Int(line.components(separatedBy: "killing worker ").last?.prefix { $0.isNumber } ?? "") ?? -1
            #expect(answeredBy.count >= 8, "\(answeredBy.count) requests answered while a worker was blocked")
            #expect(victim > 0, "no harakiri: \(server.process.output.suffix(1500))")
            // The other worker answered (the blocked one may too, on its other event loop).
            #expect(answeredBy.contains { $0 != victim }, "answered by \(answeredBy), blocked \(victim)")
        }

        @Test("--harakiri without --workers: one worker under a master, killed and replaced the same way")
        func oneWorkerUnderAMaster() async throws {
            let server = try await OpsServer.start("harakiri-one", ["--harakiri", "1"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 1 })
            let first = try await server.workerPIDs()
            _ = await server.get("/block?ms=30000")
            #expect(
                await eventually(6) {
                    let now = (try? await server.workerPIDs()) ?? []
                    return now.count == 1 && now.isDisjoint(with: first)
                }, "\(server.process.output.suffix(1500))")
            #expect(await server.get("/hello").status == 200)
            let status = try await server.status()
            #expect(status["mode"] as? String == "master")
        }

        /// A worker whose event loop is blocked stops taking connections on every listener, HTTP
        /// included (its connections go to an event loop, not the accepting thread): its accept
        /// thread stops waiting for the socket, and the other worker's, which looks again every
        /// 100 ms, takes a connection the kernel woke the blocked one for. No --harakiri here.
        @Test("--workers 2 over HTTP, no --harakiri: a request sent while one worker is blocked is answered by the other within a second, 3 of 3")
        func httpRequestBehindABlockedWorker() async throws {
            let server = try await OpsServer.start("blocked-http", ["--workers", "2"])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            for round in 0..<3 {
                let blocked = Task { await server.get("/block?ms=3000") }
                try await Task.sleep(for: .milliseconds(500))
                let started = ContinuousClock.now
                let answer = await server.get("/pid")
                let took = ContinuousClock.now - started
                let blocker = await blocked.value
                let blockedPID = Int(blocker.body.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
                #expect(answer.status == 200, "round \(round): \(answer)")
                #expect(took < .seconds(1), "round \(round): answered after \(took)")
                #expect(
                    Self.pid(answer.body) != nil && Self.pid(answer.body) != blockedPID, "round \(round): \(answer.body) by the blocked worker \(blocker.body)")
            }
        }

        /// The judgment itself, on reports as a worker writes them.
        @Test func theVerdict() {
            let harakiri = Harakiri(seconds: 5)
            var report = StatsSnapshot()
            report.reportedAt = 1000
            #expect(harakiri.verdict(report, now: 1001) == nil)
            report.oldestRequest = "GET /slow HTTP/1.1"
            report.oldestRequestSeconds = 4
            #expect(harakiri.verdict(report, now: 1000.5) == nil)
            #expect(harakiri.verdict(report, now: 1001.5)?.contains("\"GET /slow HTTP/1.1\" has run 5.5 s") == true)
            report.oldestRequest = nil
            report.oldestRequestSeconds = nil
            report.eventLoopStallSeconds = 4.5
            #expect(harakiri.verdict(report, now: 1000.2) == nil)
            #expect(harakiri.verdict(report, now: 1001)?.contains("an event loop has not answered for 5.5 s") == true)
            report.eventLoopStallSeconds = 0
            #expect(harakiri.verdict(report, now: 1006) == nil)
            #expect(harakiri.verdict(report, now: 1007.5)?.contains("has not reported for 7.5 s") == true)
            #expect(Harakiri(seconds: 0).verdict(report, now: 9999) == nil)
        }
    }
}
