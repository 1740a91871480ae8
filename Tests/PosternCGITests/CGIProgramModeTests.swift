// CGI program mode (RFC 3875) of the built binaries: clean environment, exact bytes on stdout.
import Foundation
import Testing

@Suite("CGI program mode of the built executables")
struct CGIProgramModeTests {
    static let helloBytes = Array("Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, World!\n".utf8)

    static func cgiEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = [
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SCRIPT_NAME": "/cgi-bin/app", "PATH_INFO": "",
            "QUERY_STRING": "", "REMOTE_ADDR": "127.0.0.1",
        ]
        environment.merge(extra) { $1 }
        return environment
    }

    @Test("hello answers one GET with the exact CGI response and exits 0")
    func helloByteExact() async throws {
        let result = try await runProgram(try TestPaths.executable("hello"), environment: Self.cgiEnvironment())
        #expect(result.stdout == Self.helloBytes)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
    }

    @Test("hello-cgi, the CGI-only binary, answers exactly as hello does in CGI mode")
    func helloCGIOnlyBinary() async throws {
        let environment = Self.cgiEnvironment()
        let full = try await runProgram(try TestPaths.executable("hello"), environment: environment)
        let small = try await runProgram(try TestPaths.executable("hello-cgi"), environment: environment)
        #expect(small.stdout == Self.helloBytes)
        #expect(small.stdout == full.stdout)
        #expect(small.status == 0)
        #expect(small.stderr.isEmpty)
        // A bad request is refused the same way, on stdout, with the reason on stderr.
        let bad = try await runProgram(try TestPaths.executable("hello-cgi"), environment: Self.cgiEnvironment(["CONTENT_LENGTH": "12x"]))
        #expect(String(decoding: bad.stdout, as: UTF8.self).hasPrefix("Status: 400"))
        #expect(!bad.stderr.isEmpty)
    }

    @Test("ISINDEX argv words, even listener flags, never reach the argument parser (RFC 3875 §4.4)")
    func isindexArguments() async throws {
        let hello = try TestPaths.executable("hello")
        let plain = try await runProgram(hello, arguments: ["foo", "bar"], environment: Self.cgiEnvironment(["QUERY_STRING": "foo+bar"]))
        #expect(plain.stdout == Self.helloBytes)
        #expect(plain.status == 0)
        // A request for /app?--http+127.0.0.1:0 must not start a listener.
        let flags = try await runProgram(
            hello, arguments: ["--http", "127.0.0.1:0"], environment: Self.cgiEnvironment(["QUERY_STRING": "--http+127.0.0.1%3a0"]))
        #expect(flags.stdout == Self.helloBytes)
        #expect(flags.status == 0)
        // Unknown arguments that are not the query's words are ignored in CGI mode too.
        let unknown = try await runProgram(hello, arguments: ["--no-such-flag"], environment: Self.cgiEnvironment())
        #expect(unknown.stdout == Self.helloBytes)
    }

    @Test("echo reads exactly CONTENT_LENGTH bytes of stdin and streams them back")
    func echoExactLength() async throws {
        let result = try await runProgram(
            try TestPaths.executable("echo"),
            environment: Self.cgiEnvironment(["REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10", "CONTENT_TYPE": "text/x-test"]),
            stdin: Array("0123456789 and bytes past CONTENT_LENGTH".utf8)
        )
        #expect(result.stdout == Array("Status: 200 OK\r\nContent-Type: text/x-test\r\n\r\n0123456789".utf8))
        #expect(result.status == 0)
    }

    @Test("echo with a 1 MiB body: every byte, in order")
    func echoLargeBody() async throws {
        let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let result = try await runProgram(
            try TestPaths.executable("echo"),
            environment: Self.cgiEnvironment(["REQUEST_METHOD": "PUT", "CONTENT_LENGTH": String(body.count)]),
            stdin: body
        )
        let head = Array("Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        #expect(Array(result.stdout.prefix(head.count)) == head)
        #expect(Array(result.stdout.dropFirst(head.count)) == body)
    }

    @Test(
        "a binary on Gateway.main serves a CGI request on its one thread: no thread, event loop or eventfd is made",
        arguments: ["echo", "postern"])
    func oneThreadNoEventLoop(binary: String) async throws {
        // The program blocks reading a body that has not come yet; meanwhile its threads and its
        // descriptors are read from /proc. An async entry point (Dispatch's main queue) or an
        // event loop made before the request would show there as a second task, an epoll set
        // or an eventfd.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try TestPaths.executable(binary))
        process.environment = Self.cgiEnvironment(["REQUEST_METHOD": "POST", "CONTENT_LENGTH": "5", "POSTERN_APP": "echo"])
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let pid = process.processIdentifier
        func tasks() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] }
        func waitsForTheBody() -> Bool {
            tasks().contains { task in
                // pipe_read, or anon_pipe_read on newer kernels
                (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8))?.hasSuffix("pipe_read") == true
            }
        }
        let deadline = Date().addingTimeInterval(20)
        while !waitsForTheBody() && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(waitsForTheBody(), "the CGI program never blocked reading stdin")
        #expect(tasks().count == 1, "threads: \(tasks())")
        let descriptors = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")
        }
        #expect(!descriptors.contains { $0.contains("eventpoll") || $0.contains("eventfd") }, "descriptors: \(descriptors)")
        try input.fileHandleForWriting.write(contentsOf: Data("abcde".utf8))
        try input.fileHandleForWriting.close()
        let response = try await onOwnThread { output.fileHandleForReading.readDataToEndOfFile() }
        process.waitUntilExit()
        #expect(String(decoding: response, as: UTF8.self).hasSuffix("\r\n\r\nabcde"))
        #expect(process.terminationStatus == 0)
    }

    @Test("a short stdin is reported on stderr, never padded")
    func shortBody() async throws {
        let result = try await runProgram(
            try TestPaths.executable("echo"),
            environment: Self.cgiEnvironment(["REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10"]),
            stdin: Array("abc".utf8)
        )
        #expect(result.stderr.contains("CONTENT_LENGTH is 10"))
        #expect(result.status == 1)
        // At most the three bytes that came (the body fails at the mismatch), nothing invented.
        let head = Array("Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        #expect(result.stdout == head || result.stdout == head + Array("abc".utf8))
    }

    @Test("environ: run_once true, protocol cgi, HTTP_PROXY dropped, variables from the environment")
    func environFlags() async throws {
        let result = try await runProgram(
            try TestPaths.executable("environ"),
            environment: Self.cgiEnvironment(["HTTP_PROXY": "http://evil.example/", "HTTP_X_TEST": "yes", "PATH_INFO": "/a/b"])
        )
        let text = String(decoding: result.stdout, as: UTF8.self)
        #expect(text.hasPrefix("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{\n"))
        #expect(text.contains("\"gateway.run_once\": \"true\""))
        #expect(text.contains("\"gateway.protocol\": \"cgi\""))
        #expect(text.contains("\"HTTP_X_TEST\": \"yes\""))
        #expect(text.contains("\"PATH_INFO\": \"/a/b\""))
        #expect(!text.contains("HTTP_PROXY"))
        #expect(!text.contains("evil.example"))
    }

    @Test("postern itself is a CGI program: POSTERN_APP picks the demo app, argv is ignored")
    func posternBinary() async throws {
        let postern = try TestPaths.executable("postern")
        let hello = try await runProgram(
            postern, arguments: ["serve", "--http", "127.0.0.1:0"],
            environment: Self.cgiEnvironment(["POSTERN_APP": "hello", "QUERY_STRING": "serve+--http+127.0.0.1:0"]))
        #expect(hello.stdout == Self.helloBytes)
        let environ = try await runProgram(postern, environment: Self.cgiEnvironment())
        #expect(String(decoding: environ.stdout, as: UTF8.self).contains("\"gateway.run_once\": \"true\""))
    }

    @Test("a request the normalizer refuses gets a 400 CGI response and a reason on stderr")
    func badRequest() async throws {
        let result = try await runProgram(try TestPaths.executable("hello"), environment: Self.cgiEnvironment(["CONTENT_LENGTH": "12x"]))
        #expect(String(decoding: result.stdout, as: UTF8.self).hasPrefix("Status: 400 Bad Request\r\n"))
        #expect(result.stderr.contains("CONTENT_LENGTH"))
    }
}
