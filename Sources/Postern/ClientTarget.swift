#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import PosternCore

/// A `postern request` URL: `fastcgi://HOST:PORT/path?query`, `scgi://…`, `uwsgi://…`, or the
/// unix forms `fastcgi+unix:///run/app.sock/path?query`, where the socket path is the longest
/// prefix of the path that names a socket file.
public struct ClientTarget: Sendable, Equatable {
    public var gatewayProtocol: GatewayProtocol
    public var address: ListenAddress
    /// `/path?query` as sent to the server.
    public var requestTarget: String

    public init(parsing url: String, isSocket: (String) -> Bool = ClientTarget.isSocketFile) throws(ListenAddressError) {
        let pieces = url.split(separator: "://", maxSplits: 1)
        guard pieces.count == 2 else { throw ListenAddressError(url, "expected SCHEME://…") }
        var scheme = pieces[0].lowercased()
        let rest = String(pieces[1])
        let unix = scheme.hasSuffix("+unix")
        if unix { scheme.removeLast(5) }
        guard let kind = GatewayProtocol(rawValue: scheme), kind != GatewayProtocol.cgi else {
            throw ListenAddressError(url, "unknown scheme \(scheme); use fastcgi, scgi, uwsgi or http (with +unix for a socket)")
        }
        gatewayProtocol = kind
        if unix {
            guard rest.hasPrefix("/") else { throw ListenAddressError(url, "a +unix URL needs an absolute socket path") }
            let pathPart = String(rest.prefix { $0 != "?" })
            let query = rest.dropFirst(pathPart.count)
            var split: (String, String)?
            var index = pathPart.endIndex
            while index > pathPart.startIndex {
                let candidate = String(pathPart[..<index])
                if isSocket(candidate) {
                    split = (candidate, String(pathPart[index...]))
                    break
                }
                guard let slash = pathPart[..<index].lastIndex(of: "/") else { break }
                index = slash
            }
            guard let (socketPath, requestPath) = split else {
                throw ListenAddressError(url, "no prefix of \(pathPart) is a unix socket")
            }
            address = .unix(path: socketPath)
            requestTarget = (requestPath.isEmpty ? "/" : requestPath) + query
        } else {
            let authority = String(rest.prefix { $0 != "/" && $0 != "?" })
            address = try ListenAddress(parsing: authority)
            let target = String(rest.dropFirst(authority.count))
            requestTarget = target.isEmpty ? "/" : (target.hasPrefix("?") ? "/" + target : target)
        }
    }

    public static func isSocketFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}
