import Foundation
import Logging
import NIOCore
import NIOPosix
import Postern
import PosternCore
import PosternEngine
import ServiceLifecycle

/// A GatewayServer on 127.0.0.1 port 0 for one test: started, its ports read, stopped gracefully.
public struct TestServer: Sendable {
    public let addresses: [SocketAddress?]
    let group: ServiceGroup
    let task: Task<Void, any Error>

    public var port: Int { addresses[0]!.port! }

    public static func start(
        _ app: any Application,
        listeners: [ListenerSpec] = [ListenerSpec(.http, .tcp(host: "127.0.0.1", port: 0))],
        limits: GatewayLimits = GatewayLimits()
    ) async throws -> TestServer {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let configuration = GatewayConfiguration(application: app, limits: limits, logger: logger)
        let (stream, continuation) = AsyncStream<[SocketAddress?]>.makeStream()
        let server = GatewayServer(listeners: listeners, configuration: configuration) { continuation.yield($0) }
        let group = ServiceGroup(services: [server], logger: logger)
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let addresses = await iterator.next() else { throw TestFailure("server did not start") }
        return TestServer(addresses: addresses, group: group, task: task)
    }

    /// Graceful shutdown; waits until the server has stopped.
    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// A plain blocking TCP client (beside the NIO-based `RawClient`) run off the cooperative pool: it sends exact bytes and reads
/// exact bytes, so the tests see the wire as a front-end would.
public enum BlockingClient {
    public static func exchange(port: Int, _ request: [UInt8], readUntilClose: Bool = true) async throws -> [UInt8] {
        try await NIOThreadPool.singleton.runIfActive {
            let fd = try connectTCP(port: port)
            defer { close(fd) }
            try sendAll(fd, request)
            return readAll(fd)
        }
    }

    public static func exchange(port: Int, _ request: String) async throws -> String {
        String(decoding: try await exchange(port: port, Array(request.utf8)), as: UTF8.self)
    }

    /// A connected socket, close-on-exec: a child process spawned meanwhile must not hold it open.
    public static func connectTCP(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw TestFailure("connect failed: errno \(errno)")
        }
        return fd
    }

    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw TestFailure("send failed: errno \(errno)") }
            offset += sent
        }
    }

    public static func readAll(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            out += chunk[0..<count]
        }
        return out
    }
}

/// An HTTP/1.1 response parsed from raw bytes, with chunked bodies decoded.
public struct ParsedResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// Parses every response in `bytes`, in order.
    public static func parseAll(_ bytes: [UInt8], headRequests: Int = 0) throws -> [ParsedResponse] {
        var rest = bytes[...]
        var responses: [ParsedResponse] = []
        while !rest.isEmpty {
            guard let end = rest.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("incomplete head") }
            let headText = String(decoding: rest[..<end.lowerBound], as: UTF8.self)
            rest = rest[end.upperBound...]
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("bad status line") }
            let headers = lines.map { line -> (String, String) in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
            var response = ParsedResponse(status: status, headers: headers, body: [])
            if status == 100 { continue }
            if let length = response.header("Content-Length").flatMap(Int.init) {
                response.body = Array(rest.prefix(length))
                rest = rest.dropFirst(length)
            } else if response.header("Transfer-Encoding")?.lowercased() == "chunked" {
                while true {
                    guard let lineEnd = rest.firstRange(of: Array("\r\n".utf8)) else { throw TestFailure("bad chunk") }
                    let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16)!
                    rest = rest[lineEnd.upperBound...]
                    response.body += rest.prefix(size)
                    rest = rest.dropFirst(size + 2)
                    if size == 0 { break }
                }
            } else {
                response.body = Array(rest)
                rest = []
            }
            responses.append(response)
        }
        return responses
    }
}

extension BlockingClient {
    /// Sends `request` and reads to the end, blocking the calling thread.
    public static func blockingExchange(port: Int, _ request: [UInt8]) throws -> [UInt8] {
        let fd = try connectTCP(port: port)
        defer { close(fd) }
        try sendAll(fd, request)
        return readAll(fd)
    }

    /// A GET as a browser would send it through a front-end, with `Connection: close`.
    public static func get(port: Int, _ target: String, headers: [String] = []) async throws -> ParsedResponse {
        let head = (["GET \(target) HTTP/1.1", "Host: 127.0.0.1:\(port)"] + headers + ["Connection: close", "", ""]).joined(separator: "\r\n")
        let raw = try await exchange(port: port, Array(head.utf8))
        guard let response = try ParsedResponse.parseAll(raw).last else { throw TestFailure("no response from port \(port)") }
        return response
    }

    public static func post(port: Int, _ target: String, body: [UInt8], contentType: String) async throws -> ParsedResponse {
        let head =
            "POST \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let raw = try await exchange(port: port, Array(head.utf8) + body)
        guard let response = try ParsedResponse.parseAll(raw).last else { throw TestFailure("no response from port \(port)") }
        return response
    }

    /// `clients` connections at once, each sending `requests` GETs one after another; returns the
    /// statuses of all of them.
    public static func concurrentGets(port: Int, _ target: String, clients: Int, requests: Int) async throws -> [Int] {
        let pool = NIOThreadPool(numberOfThreads: clients)
        pool.start()
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<clients {
                group.addTask {
                    try await pool.runIfActive {
                        try (0..<requests).map { _ in
                            let head = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                            let raw = try blockingExchange(port: port, Array(head.utf8))
                            return try ParsedResponse.parseAll(raw).last?.status ?? 0
                        }
                    }
                }
            }
            var statuses: [Int] = []
            for try await part in group { statuses += part }
            return statuses
        }
        try await pool.shutdownGracefully()
        return statuses
    }
}
