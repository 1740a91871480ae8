import Foundation
import NIOCore
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

extension Ops {
    /// `--timeout` and `--max-concurrency`, live: a real `postern serve --app ops` process.
    @Suite(.serialized) struct TimeoutTests {
        @Test func slowRequestsGet504WhileFastOnesProceed() async throws {
            let server = try await OpsServer.start("timeout", ["--timeout", "1"])
            defer { server.process.stop() }
            let started = ContinuousClock.now
            let slow = Task { await server.get("/sleep?ms=6000") }
            let stubborn = Task { await server.get("/stubborn?ms=10000") }  // long enough to be seen running on a loaded machine
            try await Task.sleep(for: .milliseconds(200))
            // While both wait for their deadline, the same process answers at once.
            for _ in 0..<5 {
                let fastStart = ContinuousClock.now
                let fast = await server.get("/hello")
                #expect(fast.status == 200)
                #expect(ContinuousClock.now - fastStart < .milliseconds(500), "a fast request waited behind the slow ones")
            }
            let slowStatus = await slow.value.status
            let stubbornStatus = await stubborn.value.status
            let elapsed = ContinuousClock.now - started
            #expect(slowStatus == 504)
            #expect(stubbornStatus == 504, "an app that ignores cancellation is still answered at the deadline")
            #expect(elapsed < .milliseconds(3000), "both answered near the 1 s deadline, not when the apps finished: \(elapsed)")
            let status = try await server.status()
            #expect(status["timeouts"] as? Int == 2)
            // The stubborn task still runs detached (until 10 s after it started), and is counted.
            #expect(status["abandoned_tasks"] as? Int == 1, "the stubborn task still runs detached: \(status)")
            // Once it ends on its own (10 s after it started), it is no longer counted.
            var abandoned = -1
            for _ in 0..<100 {
                abandoned = try await server.status()["abandoned_tasks"] as? Int ?? -1
                if abandoned == 0 { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(abandoned == 0, "the stubborn task ended but is still counted")
            #expect(await server.get("/hello").status == 200)
        }

        @Test func fastCGITimeoutSends504ThenEndRequest() async throws {
            let fastcgiPort = try Ports.free()
            let server = try await OpsServer.start("timeout-fcgi", ["--timeout", "1", "--fastcgi", "127.0.0.1:\(fastcgiPort)"])
            defer { server.process.stop() }
            try await Wait.forPort(fastcgiPort)
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: fastcgiPort))
            let slow = try await client.start(ClientRequest(target: "/stubborn?ms=3000"))
            // A second request multiplexed on the same connection is not held up.
            let fast = try await client.send(ClientRequest(target: "/hello"))
            #expect(try fast.response().status.code == 200)
            let result = try await slow.result()
            #expect(result.protocolStatus == .requestComplete, "END_REQUEST after the 504")
            let response = try result.response()
            #expect(response.status.code == 504)
            // The connection (KEEP_CONN) still serves.
            let after = try await client.send(ClientRequest(target: "/pid"))
            #expect(try after.response().status.code == 200)
            #expect(!client.isClosed)
            await client.close()
        }

        @Test func maxConcurrencyQueuesExcessRequests() async throws {
            let server = try await OpsServer.start("concurrency", ["--max-concurrency", "1"])
            defer { server.process.stop() }
            let started = ContinuousClock.now
            let requests = (0..<3).map { _ in Task { await server.get("/sleep?ms=600") } }
            var codes: [Int] = []
            for request in requests { codes.append(await request.value.status) }
            let elapsed = ContinuousClock.now - started
            #expect(codes == [200, 200, 200])
            // One at a time: three 600 ms requests take 1.8 s, not 0.6 s.
            #expect(elapsed >= .milliseconds(1750), "ran at once: \(elapsed)")
            #expect(elapsed < .seconds(15), "queued requests waited far longer than their turn: \(elapsed)")
        }

        @Test func waitingForASlotCountsAgainstTheTimeout() async throws {
            let server = try await OpsServer.start("concurrency-timeout", ["--max-concurrency", "1", "--timeout", "1"])
            defer { server.process.stop() }
            let first = Task { await server.get("/sleep?ms=800") }
            try await Task.sleep(for: .milliseconds(150))
            let second = Task { await server.get("/sleep?ms=800") }
            #expect(await first.value.status == 200)
            #expect(await second.value.status == 504, "waited ~650 ms for the slot, then 800 ms ran past 1 s")
        }

        @Test("one process: a task that ignores --timeout keeps its --max-concurrency slot, so the next request gets 504 too, until it ends; the log says why")
        func abandonedTaskKeepsItsSlot() async throws {
            let server = try await OpsServer.start("abandoned-single", ["--max-concurrency", "1", "--timeout", "1"])
            defer { server.process.stop() }
            let stubborn = await server.get("/stubborn?ms=4000")
            #expect(stubborn.status == 504)
            let blocked = await server.get("/hello")
            #expect(blocked.status == 504, "the slot is the stubborn task's until it ends: --max-concurrency 1 means one app task")
            #expect(try await server.status()["abandoned_tasks"] as? Int == 1)
            #expect(try await eventually { server.process.output.contains("application tasks ignore --timeout and still run") }, "\(server.process.output)")
            // Once the stubborn task ends on its own (4 s), the slot is free again.
            #expect(try await eventually(10) { await server.get("/hello").status == 200 })
            #expect(try await server.status()["abandoned_tasks"] as? Int == 0)
        }

        @Test("workers: a worker whose tasks ignore --timeout is stuck; it drains and is replaced, and requests are served again at once")
        func stuckWorkerIsReplaced() async throws {
            let server = try await OpsServer.start("abandoned-workers", ["--workers", "2", "--max-concurrency", "1", "--timeout", "1"])
            defer { server.process.stop() }
            #expect(try await eventually { try await server.workerPIDs().count == 2 })
            // Three rounds: the worker stops (SIGTERM to itself) as it answers the 504, and the
            // graceful stop must not overtake that answer. It did (an empty reply) in 4 runs of 6
            // while a drain closed idle connections from outside their tasks.
            for round in 1...3 {
                let before = try await server.workerPIDs()
                // A 60 s stubborn task: the worker holding it leaves long before the task would end.
                let started = ContinuousClock.now
                #expect(await server.get("/stubborn?ms=60000").status == 504, "round \(round)")
                #expect(
                    try await eventually(20) {
                        let now = try await server.workerPIDs()
                        return now.count == 2 && now != before
                    }, "the stuck worker was not replaced (workers were \(before))")
                #expect(ContinuousClock.now - started < .seconds(30))
            }
            #expect(server.process.output.contains("this worker is stuck; draining and leaving"), "\(server.process.output)")
            for _ in 0..<10 {
                #expect(await server.get("/hello").status == 200)
            }
        }
    }
}
