// A member of a balancer leaving it: `--ping-path` answered by the gateway in every protocol,
// `--drain-delay` turning it to 503 while every request is still served, then the graceful stop.
import Foundation
import PosternCore
import PosternOps
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Drain", .serialized)
    struct DrainTests {
        /// `postern request URL`: the status line's code, or 0 when the request failed.
        static func status(_ url: String) async throws -> Int {
            let result = try await PosternCommand.run(["request", url])
            guard result.status == 0, let line = result.output.split(separator: "\n").first else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }

        @Test("the ping path in every protocol: 200 pong without the app; SIGTERM: 503 for --drain-delay while requests are served, then a stop")
        func singleProcess() async throws {
            let ports = try (0..<3).map { _ in try Ports.free() }
            let server = try await OpsServer.start(
                "drain-single",
                [
                    "--scgi", "127.0.0.1:\(ports[0])", "--uwsgi", "127.0.0.1:\(ports[1])", "--fastcgi", "127.0.0.1:\(ports[2])", "--ping-path", "/ping",
                    "--drain-delay", "3",
                ], statusPort: false)
            defer { server.process.stop() }
            let urls = ["http://127.0.0.1:\(server.port)", "scgi://127.0.0.1:\(ports[0])", "uwsgi://127.0.0.1:\(ports[1])", "fastcgi://127.0.0.1:\(ports[2])"]
            for url in urls {
                let ping = try await PosternCommand.run(["request", url + "/ping?from=check"])
                #expect(ping.output.hasPrefix("HTTP/1.1 200") && ping.output.hasSuffix("\r\n\r\npong\n"), "\(url): \(ping)")
                // The app is not called for the ping, and is for everything else.
                let other = try await PosternCommand.run(["request", url + "/ping/more"])
                #expect(other.output.hasSuffix("\r\n\r\nHello, World!\n"), "\(url): \(other)")
            }
            let stopAsked = ContinuousClock.now
            server.signal(SIGTERM)
            #expect(await eventually(5) { server.process.output.contains("SIGTERM: draining") }, "\(server.process.output)")
            for url in urls {
                #expect(try await Self.status(url + "/ping") == 503, "\(url)")
                #expect(try await Self.status(url + "/pid") == 200, "\(url): served while draining")
            }
            // A reload would end the drain early (and run the binary again): refused meanwhile.
            server.signal(SIGHUP)
            #expect(await eventually(5) { server.process.output.contains("SIGHUP: draining to stop (--drain-delay); not reloading") })
            #expect(server.process.isRunning, "stopped before --drain-delay")
            let status = await server.waitForExit(seconds: 15)
            #expect(status == 0)
            #expect(ContinuousClock.now - stopAsked >= .seconds(3), "stopped before --drain-delay")
        }

        @Test("with --workers 2 the master drains: every worker's ping says 503, then all stop; a second SIGTERM skips the rest of the delay")
        func master() async throws {
            let server = try await OpsServer.start("drain-master", ["--workers", "2", "--ping-path", "/ping", "--drain-delay", "60"], statusPort: false)
            defer { server.process.stop() }
            #expect(await server.get("/ping").status == 200)
            server.signal(SIGTERM)
            #expect(await eventually(5) { server.process.output.contains("SIGTERM: draining") }, "\(server.process.output)")
            // Eight fresh connections reach both workers (the kernel spreads them): all 503.
            for _ in 0..<8 {
                let ping = await server.get("/ping")
                #expect(ping.status == 503 && ping.body == "draining\n", "\(ping)")
                #expect(await server.get("/pid").status == 200)
            }
            let stopAsked = ContinuousClock.now
            server.signal(SIGTERM)
            let status = await server.waitForExit(seconds: 15)
            #expect(status == 0, "\(server.process.output.suffix(2000))")
            #expect(ContinuousClock.now - stopAsked < .seconds(15))
            #expect(server.process.output.contains("the rest of --drain-delay skipped"))
        }

        @Test("the ping path's match: the whole path, GET and HEAD only, the query ignored; 503 while draining")
        func pingResponder() async throws {
            let draining = DrainState()
            let ping = PingResponder(path: "/ping", draining: draining, wrapping: ApplicationFunction { _ in .text("app\n") })
            func answer(_ variables: EnvironVariables) async throws -> (Int, String) {
                let response = try await ping.respond(to: Environ(variables: variables, gatewayProtocol: .fastcgi))
                guard case .bytes(let buffer) = response.body.storage else { return (response.status.code, "") }
                return (response.status.code, String(buffer: buffer))
            }
            // Every front-end's split of the same path (Apache: all in SCRIPT_NAME; uwsgi: in PATH_INFO).
            for (script, path) in [("/ping", ""), ("", "/ping"), ("/pi", "ng")] {
                #expect(
                    try await answer(["REQUEST_METHOD": "GET", "SCRIPT_NAME": .init(script), "PATH_INFO": .init(path), "QUERY_STRING": "a=1"]) == (
                        200, "pong\n"
                    ))
            }
            #expect(try await answer(["REQUEST_METHOD": "HEAD", "PATH_INFO": "/ping"]).0 == 200)
            #expect(try await answer(["REQUEST_METHOD": "POST", "PATH_INFO": "/ping"]) == (200, "app\n"))
            #expect(try await answer(["REQUEST_METHOD": "GET", "PATH_INFO": "/ping/"]) == (200, "app\n"))
            #expect(try await answer(["REQUEST_METHOD": "GET", "PATH_INFO": "/pin"]) == (200, "app\n"))
            draining.begin()
            #expect(try await answer(["REQUEST_METHOD": "GET", "PATH_INFO": "/ping"]) == (503, "draining\n"))
            #expect(try await answer(["REQUEST_METHOD": "GET", "PATH_INFO": "/other"]) == (200, "app\n"))
            #expect(PingResponder.problem(with: "ping") != nil)
            #expect(PingResponder.problem(with: "/ping?x") != nil)
            #expect(PingResponder.problem(with: "/healthz") == nil)
        }

        @Test("a master's marker file: a worker's DrainState sees it")
        func marker() throws {
            let directory = try Paths.makeTestDirectory("drain-marker")
            let state = DrainState(marker: DrainState.marker(in: directory))
            #expect(!state.isDraining)
            #expect(FileManager.default.createFile(atPath: DrainState.marker(in: directory + "/"), contents: nil))
            #expect(state.isDraining)
        }
    }
}
