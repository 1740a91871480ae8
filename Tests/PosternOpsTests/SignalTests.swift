// The signals a sysadmin or a tool sends in routine work, live, to real processes: none ends the
// server; SIGUSR1 reopens the access log (logrotate); SIGTTIN/SIGTTOU add and remove workers;
// SIGQUIT stops gracefully.
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Signals", .serialized)
    struct SignalTests {
        static func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

        /// logrotate's way: move the file, send SIGUSR1; later lines go to a new file at the path.
        static func rotate(_ server: OpsServer, log: String, reopened: Int) async throws {
            try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
            server.signal(SIGUSR1)
            let said = await eventually { server.process.output.components(separatedBy: "SIGUSR1: logs reopened").count - 1 >= reopened }
            #expect(said, "no \"logs reopened\" from \(reopened) process(es): \(server.process.output.suffix(1500))")
        }

        /// The accepting threads of a real server, 64 on each of its four listeners (HTTP's
        /// too): every one is named `postern-accept` (Foundation's `Thread.current.name`, set from inside a thread
        /// just started, was lost about once in 100: the thread kept its creator's name, and a
        /// request it served inline looked as if the full engine had served it), and every one
        /// blocks the signals sent to the process, so none lands in a thread waiting for a
        /// request's first bytes (its `poll` would fail with `EINTR`); another thread takes them.
        @Test("every accepting thread is named and blocks the signals sent to the process")
        func acceptingThreadsBlockSignals() async throws {
            let ports = try (0..<3).map { _ in try Ports.free() }
            let server = try await OpsServer.start(
                "signals-accept", ["--scgi", "127.0.0.1:\(ports[0])", "--uwsgi", "127.0.0.1:\(ports[1])", "--fastcgi", "127.0.0.1:\(ports[2])"],
                statusPort: false, environment: ProcessInfo.processInfo.environment.merging(["POSTERN_ACCEPT_THREADS": "64"]) { $1 })
            defer { server.process.stop() }
            for port in ports { try await Wait.forPort(port) }
            let tasks = "/proc/\(server.process.pid)/task"
            var accepting: [String: UInt64] = [:]
            var names: [String: Int] = [:]
            // Each thread names itself as it starts: up to 5 s for all of them.
            for _ in 0..<50 {
                accepting = [:]
                names = [:]
                for task in try FileManager.default.contentsOfDirectory(atPath: tasks) {
                    let name = Self.contents("\(tasks)/\(task)/comm").trimmingCharacters(in: .newlines)
                    names[name, default: 0] += 1
                    guard name == "postern-accept" else { continue }
                    let line = Self.contents("\(tasks)/\(task)/status").split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
                    accepting[task] = line.flatMap { UInt64($0.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces), radix: 16) }
                }
                if accepting.count >= 4 * 64 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(accepting.count == 4 * 64, "threads by name: \(names)")
            for (task, blocked) in accepting {
                for signal in [SIGHUP, SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH, SIGPIPE] {
                    #expect(blocked & (1 << UInt64(signal - 1)) != 0, "thread \(task) takes signal \(signal): SigBlk \(String(blocked, radix: 16))")
                }
                #expect(blocked & (1 << UInt64(SIGSEGV - 1)) == 0, "thread \(task) blocks SIGSEGV")
            }
            // The signals still reach the process, and it serves on.
            server.signal(SIGUSR1)
            #expect(await eventually { server.process.output.contains("SIGUSR1: logs reopened") })
            #expect(await server.get("/after").status == 200)
        }

        @Test(
            "a single process: SIGUSR1 reopens the access log; SIGHUP and SIGUSR2 reload it in place; SIGTTIN, SIGTTOU, SIGWINCH leave it serving; SIGQUIT stops it gracefully"
        )
        func singleProcess() async throws {
            let directory = try Paths.makeTestDirectory("signals-single")
            let log = directory + "/access.log"
            let server = try await OpsServer.start("signals-single", ["--access-log", log], statusPort: false)
            defer { server.process.stop() }
            #expect(await server.get("/before-rotation").status == 200)
            #expect(await eventually { Self.contents(log).contains("/before-rotation") })
            try await Self.rotate(server, log: log, reopened: 1)
            #expect(await server.get("/after-rotation").status == 200)
            #expect(await eventually { Self.contents(log).contains("/after-rotation") }, "the new file has no line: \(Self.contents(log))")
            #expect(!Self.contents(log + ".1").contains("/after-rotation"), "a line went to the rotated file")

            // SIGHUP and SIGUSR2 reload in place (ConfigurationTests): the new image listens.
            for (count, signal) in [SIGHUP, SIGUSR2].enumerated() {
                server.signal(signal)
                let listening = await eventually(20) { server.process.output.components(separatedBy: "] listening").count - 1 >= count + 2 }
                #expect(listening, "signal \(signal): no reload: \(server.process.output.suffix(800))")
                #expect(server.process.output.contains("\(SignalNames.name(signal)): reloading in place"))
                #expect(await server.get("/after-\(signal)").status == 200, "not serving after signal \(signal)")
            }
            for signal in [SIGTTIN, SIGTTOU, SIGWINCH] {
                server.signal(signal)
                try await Task.sleep(for: .milliseconds(200))
                #expect(server.process.isRunning, "signal \(signal) ended the server: \(server.process.output.suffix(800))")
                #expect(await server.get("/after-\(signal)").status == 200, "not serving after signal \(signal)")
            }
            #expect(await eventually { Self.contents(log).contains("/after-\(SIGWINCH)") }, "the access log after the reloads: \(Self.contents(log))")

            server.signal(SIGQUIT)
            let status = await server.waitForExit(seconds: 15)
            #expect(status == 0, "SIGQUIT: exit status \(String(describing: status)): \(server.process.output.suffix(800))")
        }

        @Test("--error-log: the server's log goes to the file, not standard error; SIGUSR1 after logrotate moved it starts a new file")
        func errorLog() async throws {
            let directory = try Paths.makeTestDirectory("signals-error-log")
            let log = directory + "/error.log"
            let server = try await OpsServer.start("signals-error-log", ["--error-log", log], statusPort: false)
            defer { server.process.stop() }
            #expect(await eventually { Self.contents(log).contains("listening") }, "no line in --error-log: \(Self.contents(log))")
            #expect(!server.process.output.contains("listening"), "the log still went to standard error")
            try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
            server.signal(SIGUSR1)
            #expect(await eventually { Self.contents(log).contains("SIGUSR1: logs reopened") }, "the new file has no line: \(Self.contents(log))")
            #expect(!Self.contents(log + ".1").contains("SIGUSR1"), "the reopened line went to the moved file")
        }

        @Test(
            "workers: SIGUSR1 reaches every worker; SIGTTIN adds one, SIGTTOU removes one (never the last); SIGWINCH is ignored; SIGQUIT stops them all (SIGUSR2: WorkerTests)"
        )
        func workers() async throws {
            let directory = try Paths.makeTestDirectory("signals-workers")
            let log = directory + "/access.log"
            let server = try await OpsServer.start("signals-workers", ["--workers", "2", "--access-log", log])
            defer { server.process.stop() }
            func workerCount(_ count: Int) async -> Bool {
                await eventually { ((try? await server.workerPIDs()) ?? []).count == count }
            }
            #expect(await workerCount(2))
            for index in 0..<10 { #expect(await server.get("/before-\(index)").status == 200) }
            try await Self.rotate(server, log: log, reopened: 2)
            for index in 0..<10 { #expect(await server.get("/after-\(index)").status == 200) }
            #expect(
                await eventually { Self.contents(log).components(separatedBy: "/after-").count - 1 == 10 },
                "not all 10 lines in the new file (each worker must reopen): \(Self.contents(log))")
            #expect(!Self.contents(log + ".1").contains("/after-"))

            server.signal(SIGTTIN)
            #expect(await workerCount(3), "SIGTTIN did not add a worker")
            server.signal(SIGTTOU)
            #expect(await workerCount(2))
            server.signal(SIGTTOU)
            #expect(await workerCount(1))
            server.signal(SIGTTOU)
            try await Task.sleep(for: .milliseconds(500))
            #expect(await workerCount(1), "SIGTTOU past one worker")
            #expect(server.process.output.contains("one worker is the fewest"))
            server.signal(SIGWINCH)
            try await Task.sleep(for: .milliseconds(300))
            #expect(await server.get("/after-winch").status == 200)

            server.signal(SIGQUIT)
            let status = await server.waitForExit(seconds: 20)
            #expect(status == 0, "SIGQUIT: exit status \(String(describing: status)): \(server.process.output.suffix(800))")
        }
    }
}

enum SignalNames {
    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGHUP: "SIGHUP"
        case SIGUSR2: "SIGUSR2"
        default: "signal \(signal)"
        }
    }
}
