/// Re-splits SCRIPT_NAME and PATH_INFO at the URL prefix the front-end maps to the application,
/// whatever split the front-end sent (uWSGI's `mount` + `manage-script-name`, gunicorn's
/// `SCRIPT_NAME`).
///
/// Front-ends disagree: Apache mod_proxy_fcgi and mod_proxy_scgi send the whole path as
/// SCRIPT_NAME and no PATH_INFO, mod_proxy_uwsgi sends it all as PATH_INFO, lighttpd and nginx
/// (with `fastcgi_split_path_info`) split at the prefix. With a mount prefix of `/app`, a request
/// for `/app/a/b` reaches the application as SCRIPT_NAME=`/app`, PATH_INFO=`/a/b` from all of
/// them (PEP 3333: SCRIPT_NAME + PATH_INFO is the path). A path outside the prefix is left as it
/// came. The bytes are kept as they are (no decoding, no re-encoding).
public struct MountPrefix: Middleware {
    public let next: any Application
    /// `/app`: starts with `/`, no trailing `/`, never `/` alone.
    public let prefix: String

    /// - Throws: ``MountPrefixError`` when `prefix` is not an absolute path below `/`.
    public init(_ prefix: String, wrapping next: any Application) throws(MountPrefixError) {
        var normalized = prefix
        while normalized.count > 1 && normalized.hasSuffix("/") { normalized.removeLast() }
        guard normalized.hasPrefix("/"), normalized != "/" else { throw MountPrefixError(prefix: prefix) }
        self.prefix = normalized
        self.next = next
    }

    public func respond(to environ: Environ) async throws -> Response {
        try await next.respond(to: Self.split(environ, at: Array(prefix.utf8)))
    }

    /// The environ with SCRIPT_NAME and PATH_INFO split at `prefix` when the path is under it.
    static func split(_ environ: Environ, at prefix: [UInt8]) -> Environ {
        let path = (environ.variables["SCRIPT_NAME"]?.bytes ?? []) + (environ.variables["PATH_INFO"]?.bytes ?? [])
        guard path.starts(with: prefix), path.count == prefix.count || path[prefix.count] == UInt8(ascii: "/") else {
            return environ
        }
        var environ = environ
        environ.variables["SCRIPT_NAME"] = EnvironValue(bytes: prefix)
        environ.variables["PATH_INFO"] = EnvironValue(bytes: path[prefix.count...])
        return environ
    }
}

public struct MountPrefixError: Error, CustomStringConvertible, Sendable {
    public let prefix: String
    public var description: String { "mount prefix \(String(reflecting: prefix)) must be an absolute path below / (such as /app)" }
}
