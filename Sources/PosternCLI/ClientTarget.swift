import Postern
import PosternCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A `postern request` URL: `fastcgi://HOST:PORT/path?query`, `scgi://…`, `uwsgi://…`,
/// `http://…`, their TLS listeners' `https://…`, `suwsgi://…`, `fastcgi-tls://…`, or the unix forms `fastcgi+unix:///run/app.sock/path?query`, where the socket path
/// is the longest prefix of the path that names a socket file.
public struct ClientTarget: Sendable, Equatable {
    public var listenerProtocol: ListenerProtocol
    public var address: ListenAddress
    /// `/path?query` as sent to the server.
    public var requestTarget: String

    public init(parsing url: String, isSocket: (String) -> Bool = ClientTarget.isSocketFile) throws(ClientTargetError) {
        let pieces = url.split(separator: "://", maxSplits: 1)
        guard pieces.count == 2 else {
            throw ClientTargetError(
                url,
                "expected SCHEME://HOST:PORT/path, with SCHEME one of fastcgi, scgi, uwsgi, http, https, suwsgi, fastcgi-tls (or fastcgi+unix:///path/to.sock/path)"
            )
        }
        var scheme = pieces[0].lowercased()
        let rest = String(pieces[1])
        let unix = scheme.hasSuffix("+unix")
        if unix { scheme.removeLast(5) }
        guard let kind = ListenerProtocol(rawValue: scheme) else {
            throw ClientTargetError(url, "unknown scheme \(scheme); use fastcgi, scgi, uwsgi, http, https, suwsgi or fastcgi-tls (with +unix for a socket)")
        }
        listenerProtocol = kind
        if unix {
            guard rest.hasPrefix("/") else { throw ClientTargetError(url, "a +unix URL needs an absolute socket path") }
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
                throw ClientTargetError(url, "no prefix of \(pathPart) is a unix socket")
            }
            address = .unix(path: socketPath)
            requestTarget = (requestPath.isEmpty ? "/" : requestPath) + query
        } else {
            let authority = String(rest.prefix { $0 != "/" && $0 != "?" })
            do {
                address = try ListenAddress(parsing: authority)
            } catch {
                throw ClientTargetError(url, error.reason)
            }
            let target = String(rest.dropFirst(authority.count))
            requestTarget = target.isEmpty ? "/" : (target.hasPrefix("?") ? "/" + target : target)
        }
    }

    public static func isSocketFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }
}

/// A `postern request` URL that cannot be used, with the reason.
public struct ClientTargetError: Error, CustomStringConvertible, Sendable {
    public let url: String
    public let reason: String

    init(_ url: String, _ reason: String) {
        self.url = url
        self.reason = reason
    }

    public var description: String { "invalid URL \(String(reflecting: url)): \(reason)" }
}
