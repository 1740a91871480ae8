// A blocking loopback TCP socket for the soak driver, bound to a spread of 127/8 source addresses.
import Foundation

struct SoakSocket {
    let fd: Int32

    /// Connects to 127.0.0.1:`port` from 127.0.0.`source` (2...254), so a million short
    /// connections do not run out of (source, port) pairs while old ones sit in TIME_WAIT.
    init(port: Int, source: UInt8) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SoakError("socket: errno \(errno)") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr("127.0.0.\(source)")
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(port).bigEndian)
        remote.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } }
        guard bound == 0, connected == 0 else {
            let error = errno
            close(fd)
            throw SoakError("connect from 127.0.0.\(source): errno \(error)")
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw SoakError("send: errno \(errno)") }
            offset += sent
        }
    }

    /// Appends what arrives to `buffer`; false when the peer closed.
    func receive(into buffer: inout [UInt8]) throws -> Bool {
        var scratch = [UInt8](repeating: 0, count: 16384)
        let n = recv(fd, &scratch, scratch.count, 0)
        if n < 0 { throw SoakError("recv: errno \(errno)") }
        buffer += scratch[0..<n]
        return n > 0
    }

    /// Everything until the peer closes (at most 1 MiB).
    func readToEnd() throws -> [UInt8] {
        var buffer: [UInt8] = []
        while buffer.count < 1 << 20, try receive(into: &buffer) {}
        return buffer
    }

    func closeSocket() { close(fd) }
}

struct SoakError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
