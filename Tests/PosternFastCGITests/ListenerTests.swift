// Listeners: unix sockets (mode 0660, stale file replaced), fd:N, the fd-0 launch mode, allow-lists.
import Foundation
import NIOCore
import Postern
import PosternCLI
import PosternClient
import PosternCore
import PosternFastCGI
import Testing

@Suite("FastCGI listeners", .serialized)
struct ListenerTests {
    @Test("unix:PATH replaces a stale socket file, creates the socket 0660, and serves on it")
    func unixSocket() async throws {
        let directory = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("app.sock").path
        // A stale socket: bound, then closed without unlinking (a crashed server's leftover).
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(stale)
        #expect(ClientTarget.isSocketFile(path))

        try await withServer([ListenerSpec(.fastcgi, .unix(path: path))]) { _ in
            var info = stat()
            #expect(stat(path, &info) == 0)
            #expect(info.st_mode & 0o777 == 0o660)
            let client = try await FastCGIClient.connect(to: .unix(path: path))
            let response = try await client.send(ClientRequest(target: "/id?unix")).response()
            #expect(String(buffer: response.body) == "id=unix\n")
            await client.close()
            // The runtime's URL form: the socket path, then the request path.
            let viaURL = try await ProtocolClients.send(
                ClientRequest(target: try ClientTarget(parsing: "fastcgi+unix://\(path)/id?url").requestTarget),
                to: try ClientTarget(parsing: "fastcgi+unix://\(path)/id?url"))
            #expect(String(buffer: viaURL.body) == "id=url\n")
        }
    }

    @Test("fd:N serves on an inherited listening socket")
    func fdListener() async throws {
        let (fd, port) = try makeListeningSocket()
        try await withServer([ListenerSpec(.fastcgi, .fd(fd))]) { _ in
            let client = try await FastCGIClient.connect(to: .tcp(host: "127.0.0.1", port: port))
            #expect(String(buffer: try await client.send(ClientRequest(target: "/id?fd")).response().body) == "id=fd\n")
            await client.close()
        }
    }

    @Test("--allow and FCGI_WEB_SERVER_ADDRS refuse a peer not on the list")
    func allowList() async throws {
        let refusing = try ServeOptions.parse(["--fastcgi", "127.0.0.1:0"]).listenerSpecs(environment: ["FCGI_WEB_SERVER_ADDRS": "10.9.8.7,192.0.2.1"])
        #expect(refusing.count == 1)
        try await withServer(refusing) { addresses in
            let client = try await connect(addresses)
            try await expectRefused(client)
            await client.close()
        }
        let allowing = try ServeOptions.parse(["--fastcgi", "127.0.0.1:0", "--allow", "10.0.0.0/8"]).listenerSpecs(environment: [
            "FCGI_WEB_SERVER_ADDRS": "127.0.0.1"
        ])
        try await withServer(allowing) { addresses in
            let client = try await connect(addresses)
            #expect(try await client.send(ClientRequest(target: "/id?allowed")).response().status.code == 200)
            await client.close()
        }
        let cidrRefusing = try ServeOptions.parse(["--fastcgi", "127.0.0.1:0", "--allow", "10.0.0.0/8"]).listenerSpecs(environment: [:])
        try await withServer(cidrRefusing) { addresses in
            let client = try await connect(addresses)
            try await expectRefused(client)
        }
    }

    /// The server closes a refused connection at once: the request fails with a closed or reset
    /// connection, never with an answer and never by timing out.
    func expectRefused(_ client: FastCGIClient) async throws {
        do {
            let result = try await within(5) { try await client.send(ClientRequest(target: "/id?refused")) }
            Issue.record("a peer outside the allow-list was served: \(result.protocolStatus)")
        } catch let error as TestFailure {
            Issue.record("refusal not seen: \(error)")
        } catch {
            // closed (FastCGIClientError.connectionClosed) or reset (ECONNRESET): refused.
        }
        await client.close()
    }

    @Test("launched with a listening socket as fd 0 and no flags, the binary serves FastCGI on it")
    func fdZeroLaunchMode() async throws {
        let binary = Paths.packageRoot.appendingPathComponent(".build/debug/postern").path
        #expect(FileManager.default.isExecutableFile(atPath: binary), "build the package first: \(binary)")
        let (fd, port) = try makeListeningSocket()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--app", "hello"]
        // A process manager's minimal environment; as root (CI) serving fd 0 needs this.
        process.environment = ["PATH": "/usr/bin:/bin", "POSTERN_ALLOW_ROOT": "true"]
        process.standardInput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
        process.standardError = FileHandle.nullDevice
        try process.run()
        close(fd)
        let response: ClientResponse
        do {
            response = try await eventually {
                try await FastCGIClient.send(ClientRequest(target: "/"), to: .tcp(host: "127.0.0.1", port: port))
            }
        } catch {
            await stop(process)
            throw error
        }
        #expect(response.status.code == 200)
        #expect(String(buffer: response.body) == "Hello, World!\n")
        await stop(process)
        #expect(process.terminationReason == .exit || process.terminationReason == .uncaughtSignal)
    }
}
