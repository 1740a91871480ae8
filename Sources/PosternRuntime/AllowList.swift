import NIOCore

/// The peers allowed to connect: `FCGI_WEB_SERVER_ADDRS` (FastCGI 1.0 §3.2: a comma-separated
/// list of IP addresses) and `--allow` (addresses or CIDR blocks). Empty allows everyone.
/// Unix-socket peers are always allowed: file permissions guard those.
public struct AllowList: Sendable, Hashable {
    package struct Block: Sendable, Hashable {
        var bytes: [UInt8]
        var prefixLength: Int
    }

    package var blocks: [Block] = []

    public init() {}

    /// Parses `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; commas and spaces separate entries.
    public init(parsing text: String) throws(AllowListError) {
        for entry in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            try add(String(entry))
        }
    }

    public mutating func add(_ entry: String) throws(AllowListError) {
        let parts = entry.split(separator: "/", maxSplits: 1)
        guard let address = parts.first, let bytes = Self.addressBytes(String(address)) else {
            throw AllowListError(entry: entry)
        }
        var prefix = bytes.count * 8
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bytes.count * 8).contains(value) else { throw AllowListError(entry: entry) }
            prefix = value
        }
        blocks.append(Block(bytes: bytes, prefixLength: prefix))
    }

    public var isEmpty: Bool { blocks.isEmpty }

    /// Whether `peer` may connect.
    public func allows(_ peer: SocketAddress?) -> Bool {
        guard !blocks.isEmpty else { return true }
        guard let peer, let ip = peer.ipAddress else { return true }  // unix socket
        guard var bytes = Self.addressBytes(ip) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            bytes = Array(bytes[12...])  // IPv4-mapped IPv6
        }
        return blocks.contains { block in
            guard block.bytes.count == bytes.count else { return false }
            var remaining = block.prefixLength
            for (a, b) in zip(block.bytes, bytes) {
                guard remaining > 0 else { return true }
                let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
                if a & mask != b & mask { return false }
                remaining -= 8
            }
            return true
        }
    }

    static func addressBytes(_ text: String) -> [UInt8]? {
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket:
            return nil
        }
    }
}

public struct AllowListError: Error, CustomStringConvertible, Sendable {
    public let entry: String
    public var description: String { "invalid allow-list entry \(String(reflecting: entry)): expected an IP address or ADDR/PREFIX" }
}
