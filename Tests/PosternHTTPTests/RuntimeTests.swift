import NIOCore
import Postern
import PosternCLI
import PosternCore
import Testing

@Suite("Runtime: addresses, allow-lists, launch modes")
struct RuntimeTests {
    @Test(
        "listen addresses parse",
        arguments: [
            ("127.0.0.1:9000", ListenAddress.tcp(host: "127.0.0.1", port: 9000)),
            ("[::1]:8080", .tcp(host: "::1", port: 8080)),
            ("localhost:0", .tcp(host: "localhost", port: 0)),
            ("unix:/run/app.sock", .unix(path: "/run/app.sock")),
            ("fd:0", .fd(0)),
        ])
    func addresses(text: String, expected: ListenAddress) throws {
        #expect(try ListenAddress(parsing: text) == expected)
        #expect(try ListenAddress(parsing: expected.description) == expected)
    }

    @Test("bad listen addresses are refused with a reason", arguments: ["9000", ":9000", "host:70000", "host:x", "unix:", "fd:-1", "fd:x", "[::1]9000"])
    func badAddresses(text: String) {
        #expect(throws: ListenAddressError.self) { _ = try ListenAddress(parsing: text) }
    }

    @Test("allow-lists match addresses and CIDR blocks, IPv4-mapped IPv6 included")
    func allowList() throws {
        let list = try AllowList(parsing: "127.0.0.1, 10.0.0.0/8 ::1")
        func allows(_ ip: String) throws -> Bool { list.allows(try SocketAddress(ipAddress: ip, port: 1)) }
        #expect(try allows("127.0.0.1"))
        #expect(try allows("10.200.3.4"))
        #expect(try allows("::1"))
        #expect(try allows("::ffff:127.0.0.1"))
        #expect(try !allows("127.0.0.2"))
        #expect(try !allows("11.0.0.1"))
        #expect(AllowList().allows(try SocketAddress(ipAddress: "8.8.8.8", port: 1)))
        #expect(throws: AllowListError.self) { _ = try AllowList(parsing: "not-an-ip") }
        #expect(throws: AllowListError.self) { _ = try AllowList(parsing: "10.0.0.0/33") }
    }

    @Test("launch mode: flags, then fd 0, then GATEWAY_INTERFACE, then HTTP")
    func launchMode() {
        let spec = ListenerSpec(.http, .tcp(host: "127.0.0.1", port: 1))
        #expect(LaunchMode.detect(listeners: [spec], environment: ["GATEWAY_INTERFACE": "CGI/1.1"], fd0IsListening: { true }) == .listeners([spec]))
        #expect(LaunchMode.detect(listeners: [], environment: ["GATEWAY_INTERFACE": "CGI/1.1"], fd0IsListening: { true }) == .fastCGIOnStandardInput)
        #expect(LaunchMode.detect(listeners: [], environment: ["GATEWAY_INTERFACE": "CGI/1.1"], fd0IsListening: { false }) == .cgi)
        #expect(LaunchMode.detect(listeners: [], environment: [:], fd0IsListening: { false }) == .developmentHTTP)
    }

    @Test("client URLs: TCP, and unix with the socket found as a path prefix")
    func clientTargets() throws {
        let tcp = try ClientTarget(parsing: "fastcgi://127.0.0.1:9000/a/b?x=1")
        #expect(tcp.listenerProtocol == .fastcgi)
        #expect(tcp.address == .tcp(host: "127.0.0.1", port: 9000))
        #expect(tcp.requestTarget == "/a/b?x=1")
        let unix = try ClientTarget(parsing: "scgi+unix:///run/app.sock/path/x?q", isSocket: { $0 == "/run/app.sock" })
        #expect(unix.address == .unix(path: "/run/app.sock"))
        #expect(unix.requestTarget == "/path/x?q")
        #expect(throws: ClientTargetError.self) { _ = try ClientTarget(parsing: "gopher://x:1/") }
        #expect(throws: ClientTargetError.self) { _ = try ClientTarget(parsing: "uwsgi+unix:///nowhere/x", isSocket: { _ in false }) }
    }
}
