// `postern request` over HTTP, the one version every binary reports, and the errors a user sees
// for a URL without a scheme or a server that is not there.
import Foundation
import PosternCore
import PosternTestSupport
import Testing

extension Ops {
    @Suite("postern request http:// and --version", .serialized)
    struct RequestCommandTests {
        static func request(_ arguments: [String]) throws -> (status: Int32, output: String) {
            try runToEnd(Paths.binary("postern"), ["request"] + arguments)
        }

        @Test("GET, HEAD and a 1 MiB POST over HTTP, printed like curl -i; SERVER_SOFTWARE is Postern's version")
        func http() async throws {
            let directory = try Paths.makeTestDirectory("request-http")
            let demoPort = try Ports.free()
            let demo = try ManagedProcess(
                name: "postern", executable: Paths.binary("postern"), arguments: ["serve", "--app", "demo", "--http", "127.0.0.1:\(demoPort)"],
                directory: directory)
            defer { demo.stop() }
            try await Wait.forPort(demoPort)
            let base = "http://127.0.0.1:\(demoPort)"

            let hello = try Self.request([base + "/hello"])
            #expect(hello.status == 0)
            #expect(
                hello.output == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\nConnection: close\r\n\r\nHello, World!\n")

            let head = try Self.request(["-X", "HEAD", base + "/hello"])
            #expect(head.status == 0)
            #expect(head.output.hasPrefix("HTTP/1.1 200 OK\r\n") && head.output.hasSuffix("\r\n\r\n"), "\(head.output)")

            let body = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
            let file = directory + "/body.bin"
            try Data(body).write(to: URL(fileURLWithPath: file))
            let echoed = try runToEndData(Paths.binary("postern"), ["request", "--body-only", "--data-file", file, base + "/echo"])
            #expect(echoed.status == 0)
            #expect(echoed.stdout == Data(body), "\(echoed.stdout.count) bytes back of \(body.count)")

            let environ = try Self.request(["--body-only", base + "/some/where?q=1"])
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(environ.output.utf8)) as? [String: String])
            #expect(seen["SERVER_SOFTWARE"] == "Postern/\(PosternVersion.current)")
            #expect(seen["PATH_INFO"] == "/some/where")
            #expect(seen["QUERY_STRING"] == "q=1")
            #expect(seen["HTTP_HOST"] == "127.0.0.1:\(demoPort)")
            let named = try Self.request(["--body-only", "-H", "Host: example.test", base + "/"])
            let namedEnviron = try #require(try JSONSerialization.jsonObject(with: Data(named.output.utf8)) as? [String: String])
            #expect(namedEnviron["HTTP_HOST"] == "example.test", "the caller's Host wins, once")
            #expect(namedEnviron["SERVER_NAME"] == "example.test")
        }

        @Test("a URL without a scheme and a refused connection: one clear line each, exit status 1")
        func errors() throws {
            let bare = try Self.request(["127.0.0.1:9/x"])
            #expect(bare.status == 1)
            #expect(bare.output.hasPrefix("Error: invalid URL \"127.0.0.1:9/x\": expected SCHEME://"), "\(bare.output)")
            #expect(!bare.output.contains("listen address"))
            let port = try Ports.free()
            let refused = try Self.request(["http://127.0.0.1:\(port)/"])
            #expect(refused.status == 1)
            #expect(refused.output == "Error: http server at 127.0.0.1:\(port): Connection refused\n", "\(refused.output)")
        }

        @Test("postern --version and an app binary's --version report the one version")
        func version() throws {
            let postern = try runToEnd(Paths.binary("postern"), ["--version"])
            #expect(postern.status == 0)
            #expect(postern.output == PosternVersion.current + "\n")
            let hello = try runToEnd(Paths.binary("hello"), ["--version"])
            #expect(hello.status == 0)
            #expect(hello.output == "hello (Postern/\(PosternVersion.current))\n")
        }
    }
}

/// Runs a program to its end: its exit status and its standard output as bytes.
func runToEndData(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, data)
}
