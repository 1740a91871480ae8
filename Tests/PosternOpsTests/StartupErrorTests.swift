// A listener that cannot be opened stops the start with one line: the option, the address and
// the cause, whichever server (HTTP, the connection engine, a master's sockets, the status page).
import Foundation
import PosternTestSupport
import Testing

extension Ops {
    @Suite("Start-up errors name the listener", .serialized)
    struct StartupErrorTests {
        @Test("a busy port, a file that is not a socket, a host that does not resolve: --OPTION ADDRESS: cause, once")
        func listenerErrors() async throws {
            let directory = try Paths.makeTestDirectory("startup-errors")
            let port = try Ports.free()
            let holder = try ManagedProcess(
                name: "postern", executable: Paths.binary("postern"), arguments: ["serve", "--http", "127.0.0.1:\(port)"], directory: directory)
            defer { holder.stop() }
            try await Wait.forPort(port)
            let notSocket = directory + "/plain-file"
            try "x".write(toFile: notSocket, atomically: true, encoding: .utf8)
            let cases: [([String], String)] = [
                (["--http", "127.0.0.1:\(port)"], "--http 127.0.0.1:\(port): cannot bind: Address already in use"),
                (["--scgi", "127.0.0.1:\(port)"], "--scgi 127.0.0.1:\(port): cannot bind: Address already in use"),
                (["--workers", "2", "--fastcgi", "127.0.0.1:\(port)"], "--fastcgi 127.0.0.1:\(port): cannot bind: Address already in use"),
                (["--http", "127.0.0.1:0", "--status", "127.0.0.1:\(port)"], "--status 127.0.0.1:\(port): cannot bind: Address already in use"),
                (["--uwsgi", "unix:\(notSocket)"], "--uwsgi unix:\(notSocket): the file exists and is not a socket; refusing to replace it"),
                (["--fastcgi", "host.invalid:9000"], "--fastcgi host.invalid:9000: cannot resolve the host:"),
            ]
            for (arguments, expected) in cases {
                let result = try runToEnd(Paths.binary("postern"), ["serve"] + arguments)
                #expect(result.status != 0, "\(arguments)")
                let errors = result.output.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
                #expect(errors.count == 1, "\(arguments): \(result.output)")
                #expect(errors.first?.hasPrefix("Error: " + expected) == true, "\(arguments): \(result.output)")
                #expect(!result.output.contains("errno"), "\(arguments): \(result.output)")
            }
            #expect(try String(contentsOfFile: notSocket, encoding: .utf8) == "x", "the file that is not a socket was left alone")
        }
    }
}
