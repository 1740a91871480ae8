// Options from a file and from POSTERN_* variables, live: precedence, --print-config, clear
// errors, a binary started with no arguments, and SIGHUP reading the file again.
import Foundation
import NIOCore
import Postern
import PosternClient
import PosternCore
import PosternFastCGI
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Configuration from a file and the environment", .serialized)
    struct ConfigurationTests {
        /// Runs `postern ARGUMENTS` to its end with `environment` added (and no other POSTERN_*).
        static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
            try runToEnd(
                Paths.binary("postern"), arguments,
                environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("POSTERN_") }.merging(environment) { $1 })
        }

        static func write(_ text: String, _ path: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }

        @Test("the command line wins over the environment, the environment over the file, the file over the defaults; --print-config says which")
        func precedence() throws {
            let directory = try Paths.makeTestDirectory("config-precedence")
            let file = directory + "/postern.json"
            try Self.write(
                #"{"max-connections": 50, "idle-timeout": 12.5, "fastcgi": ["127.0.0.1:9001", "unix:/tmp/x.sock"], "debug": true, "timeout": 3, "app": "hello"}"#,
                file)
            let result = try Self.run(
                ["serve", "--config", file, "--print-config", "--timeout", "9"],
                environment: ["POSTERN_IDLE_TIMEOUT": "7", "POSTERN_ALLOW": "127.0.0.1,10.0.0.0/8"])
            #expect(result.status == 0, "\(result.output)")
            let lines = result.output
            #expect(lines.contains("max-connections = 50    # file \(file)"))
            #expect(lines.contains("fastcgi = [127.0.0.1:9001, unix:/tmp/x.sock]    # file \(file)"))
            #expect(lines.contains("debug = true    # file \(file)"))
            #expect(lines.contains("idle-timeout = 7.0    # environment POSTERN_IDLE_TIMEOUT"))
            #expect(lines.contains("allow = [127.0.0.1, 10.0.0.0/8]    # environment POSTERN_ALLOW"))
            #expect(lines.contains("timeout = 9.0    # command line"))
            #expect(lines.contains("max-body-bytes = 4294967296    # default"))
            #expect(lines.contains("app = hello    # file \(file)"))
            // The command's own options show their values, defaults included.
            #expect(lines.contains("cgi-timeout = 60.0    # default"), "\(lines)")
            #expect(lines.contains("cgi-root = (none)    # default"), "\(lines)")
        }

        @Test("a bad file or value: one message naming the source, the key and what was expected, and nothing starts")
        func errors() throws {
            let directory = try Paths.makeTestDirectory("config-errors")
            let typo = directory + "/typo.json"
            let wrongType = directory + "/type.json"
            let notJSON = directory + "/broken.json"
            try Self.write(#"{"max-conections": 5}"#, typo)
            try Self.write(#"{"max-connections": "many"}"#, wrongType)
            try Self.write("max-connections = 5\n", notJSON)
            let cases: [([String], [String: String], String)] = [
                (["--config", typo], [:], "\(typo): unknown key \"max-conections\""),
                (["--config", wrongType], [:], "\(wrongType): key \"max-connections\": expected an integer, found \"many\""),
                (["--config", notJSON], [:], "--config \(notJSON): cannot read it as JSON"),
                (["--config", directory + "/missing.json"], [:], "--config \(directory)/missing.json: cannot read it"),
                ([], ["POSTERN_HEADER_TIMEOUT": "soon"], "environment variable POSTERN_HEADER_TIMEOUT: expected a number, found \"soon\""),
                ([], ["POSTERN_CONFIG": typo], "unknown key \"max-conections\""),
            ]
            for (arguments, environment, message) in cases {
                let result = try Self.run(arguments + ["--print-config"], environment: environment)
                #expect(result.status == 64, "\(arguments) \(environment): status \(result.status)")
                #expect(result.output.contains(message), "\(arguments) \(environment): \(result.output)")
                #expect(!result.output.contains("# default"), "it went on after the error: \(result.output)")
            }
        }

        @Test("POSTERN_* values: a flag true/false, yes/no or 1/0 in any case; a list split at commas and trimmed; a number checked")
        func environmentValues() throws {
            let keys: [ServeConfiguration.Key] = [.init("debug", .bool), .init("allow", .list), .init("max-connections", .int), .init("timeout", .double)]
            let environment = ["POSTERN_DEBUG": "Yes", "POSTERN_ALLOW": " 127.0.0.1 ,::1\t", "POSTERN_MAX_CONNECTIONS": "12", "POSTERN_TIMEOUT": "2"]
            let resolution = try ServeConfiguration.resolve(arguments: [], keys: keys, environment: environment)
            #expect(resolution.added == ["--debug", "--allow", "127.0.0.1", "--allow", "::1", "--max-connections", "12", "--timeout", "2.0"])
            for (value, set) in [("0", false), ("NO", false), ("false", false), ("TRUE", true), ("1", true), ("yes", true)] {
                let flag = try ServeConfiguration.resolve(arguments: [], keys: keys, environment: ["POSTERN_DEBUG": value])
                #expect(flag.added == (set ? ["--debug"] : []), "POSTERN_DEBUG=\(value)")
            }
            for (name, value) in [("POSTERN_DEBUG", "maybe"), ("POSTERN_MAX_CONNECTIONS", "1.5"), ("POSTERN_TIMEOUT", "soon")] {
                #expect(throws: ServeConfiguration.ConfigurationError.self, "\(name)=\(value)") {
                    try ServeConfiguration.resolve(arguments: [], keys: keys, environment: [name: value])
                }
            }
        }

        @Test("started with no arguments, as mod_fcgid and lighttpd's bin-path do, it serves what POSTERN_* says")
        func noArguments() async throws {
            let port = try Ports.free()
            let directory = try Paths.makeTestDirectory("config-no-arguments")
            let process = try ManagedProcess(
                name: "postern", executable: Paths.binary("postern"), arguments: [],
                environment: ProcessInfo.processInfo.environment.merging([
                    "POSTERN_FASTCGI": "127.0.0.1:\(port)", "POSTERN_APP": "hello", "POSTERN_MAX_CONNECTIONS": "8",
                ]) { $1 },
                directory: directory)
            defer { process.stop() }
            try await Wait.forPort(port)
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: port))
            let result = try await client.send(ClientRequest(method: "GET", target: "/"))
            #expect(String(buffer: result.stdout).contains("Hello, World!"), "\(String(buffer: result.stdout))")
        }

        @Test(
            "a single process: SIGHUP reloads in place under load: same pid, the binary now at its path, the file's new options, 0 failed requests; a listener change asks for a restart; a broken file keeps it serving"
        )
        func singleProcessReload() async throws {
            let directory = try Paths.makeTestDirectory("config-reload-single")
            let binary = directory + "/postern"
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary)
            let file = directory + "/postern.json"
            let first = directory + "/first.log"
            let second = directory + "/second.log"
            try Self.write(#"{"access-log": "\#(first)"}"#, file)
            let server = try await OpsServer.start("config-reload-single", ["--config", file], statusPort: false, binary: binary)
            defer { server.process.stop() }
            let pid = server.process.pid
            let contents = { (path: String) in (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
            #expect(await server.get("/one").status == 200)
            #expect(await eventually { contents(first).contains("/one") })
            let load = Load(port: server.port, clients: 8)
            try await Task.sleep(for: .milliseconds(500))
            // A deploy: the new binary renamed over the old one (install(1), dpkg), a new file.
            try FileManager.default.copyItem(atPath: Paths.binary("postern"), toPath: binary + ".new")
            #expect(rename(binary + ".new", binary) == 0)
            try Self.write(#"{"access-log": "\#(second)", "scgi": ["127.0.0.1:1"]}"#, file)
            server.signal(SIGHUP)
            let relistened = await eventually(20) { server.process.output.components(separatedBy: "] listening").count - 1 >= 2 }
            try await Task.sleep(for: .milliseconds(500))
            let result = await load.finish()
            #expect(relistened, "no new image listening after SIGHUP: \(server.process.output.suffix(1500))")
            #expect(result.sent > 50)
            #expect(result.failed == 0, "failed \(result.failed) of \(result.sent): \(result.examples)")
            #expect(server.process.isRunning && server.process.pid == pid)
            let image = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
            #expect(image == binary, "the process runs \(image), not the new binary")
            #expect(await server.get("/two").status == 200)
            #expect(await eventually { contents(second).contains("/two") }, "the new access-log has no line: \(contents(second))")
            #expect(!contents(first).contains("/two"))
            #expect(
                server.process.output.contains(
                    "SIGHUP: scgi changed in the configuration; the listeners stay as they were opened at start: restart to apply it"))
            // A broken file: no reload, the same image serves on.
            try Self.write(#"{"timeout": "long"}"#, file)
            server.signal(SIGHUP)
            #expect(await eventually { server.process.output.contains("SIGHUP: not reloading: the configuration has an error") })
            #expect(await server.get("/three").status == 200)
            #expect(server.process.output.components(separatedBy: "reloading in place").count - 1 == 1)
        }

        @Test("a single process: SIGTERM during a reload's drain stops it (the binary is not executed again)")
        func stopDuringReload() async throws {
            let server = try await OpsServer.start("reload-then-stop", ["--graceful-timeout", "10"], statusPort: false)
            defer { server.process.stop() }
            let slow = Task { await server.get("/sleep?ms=1500") }
            try await Task.sleep(for: .milliseconds(300))
            server.signal(SIGHUP)
            #expect(await eventually { server.process.output.contains("SIGHUP: reloading in place") })
            server.signal(SIGTERM)
            #expect(await slow.value.status == 200, "the request in flight was not finished")
            let status = await server.waitForExit(seconds: 15)
            #expect(status == 0, "exit status \(String(describing: status)): \(server.process.output.suffix(1500))")
            #expect(server.process.output.components(separatedBy: "] listening").count - 1 == 1, "the binary ran again: \(server.process.output.suffix(1500))")
        }

        @Test(
            "SIGHUP reads the file again: the master applies workers, new workers the rest; a listener change asks for a restart; a broken file stops the reload"
        )
        func reload() async throws {
            let directory = try Paths.makeTestDirectory("config-reload")
            let file = directory + "/postern.json"
            try Self.write(#"{"workers": 2}"#, file)
            let server = try await OpsServer.start("config-reload", ["--config", file])
            defer { server.process.stop() }
            #expect(await eventually { ((try? await server.workerPIDs()) ?? []).count == 2 })
            let first = try await server.workerPIDs()
            try Self.write(#"{"workers": 3, "scgi": ["127.0.0.1:1"]}"#, file)
            server.signal(SIGHUP)
            // Three new workers, and the first two gone (drained).
            #expect(
                await eventually(20) {
                    let now = (try? await server.workerPIDs()) ?? []
                    return now.count == 3 && now.isDisjoint(with: first)
                }, "3 new workers after SIGHUP: \(server.process.output.suffix(1500))")
            #expect(server.process.output.contains("SIGHUP: workers 2 → 3"))
            #expect(
                server.process.output.contains(
                    "SIGHUP: scgi changed in the configuration; the master applies it at start only (its listeners, its worker bounds): restart to apply it"))
            let before = try await server.workerPIDs()
            try Self.write(#"{"workers": "lots"}"#, file)
            server.signal(SIGHUP)
            #expect(await eventually { server.process.output.contains("SIGHUP: not reloading: the configuration has an error") })
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await server.workerPIDs() == before, "a broken file replaced the workers")
            #expect(await server.get("/hello").status == 200)
        }
    }
}
