/// The clean environment a CGI script is started with: meta-variables, PATH, the allow-list.
import PosternCore

/// Builds a script's environment from the request's environ (RFC 3875 §4.1), never from the
/// gateway's own environment except names on the `--pass-env` allow-list.
///
/// - Request variables pass only if they are CGI meta-variables (§4.1), `HTTP_*` protocol
///   variables (§4.1.18) or a few well-known server extensions (`HTTPS`, `REQUEST_URI`, ...):
///   a front-end param such as `LD_PRELOAD` never reaches `execve`.
/// - `HTTP_PROXY` is dropped again here (httpoxy, CVE-2016-5385), whatever the allow-list says.
/// - `SCRIPT_NAME`, `PATH_INFO`, `SCRIPT_FILENAME`, `DOCUMENT_ROOT` and `PATH_TRANSLATED`
///   (§4.1.6: the root plus PATH_INFO, when PATH_INFO is not empty) are the resolver's, never the
///   front-end's.
public struct CGIScriptEnvironment: Sendable {
    /// RFC 3875 §4.1 meta-variables and common server extensions taken from the request.
    public static let requestNames: Set<String> = [
        "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "QUERY_STRING",
        "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT", "REMOTE_USER", "REQUEST_METHOD",
        "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "SERVER_SOFTWARE",
        "HTTPS", "REQUEST_URI", "REQUEST_SCHEME", "SERVER_ADDR", "REMOTE_PORT",
        "REDIRECT_STATUS", "REDIRECT_URL", "REDIRECT_QUERY_STRING",
    ]

    public private(set) var variables: [String: [UInt8]] = [:]

    /// - Parameters:
    ///   - request: the normalized request variables.
    ///   - location: the resolved script.
    ///   - root: the CGI root (DOCUMENT_ROOT).
    ///   - gatewayEnvironment: the gateway process's environment, read only for `passNames`.
    public init(
        request: EnvironVariables,
        location: CGIScriptLocation,
        root: String,
        gatewayEnvironment: [String: String],
        passNames: [String],
        defaultPath: String
    ) {
        for (name, value) in request where Self.requestNames.contains(name) || name.hasPrefix("HTTP_") {
            variables[name] = value.bytes
        }
        variables["PATH"] = Array(defaultPath.utf8)
        for name in passNames {
            if let value = gatewayEnvironment[name] { variables[name] = Array(value.utf8) }
        }
        variables["GATEWAY_INTERFACE"] = Array("CGI/1.1".utf8)
        if variables["SERVER_SOFTWARE"] == nil { variables["SERVER_SOFTWARE"] = Array(PosternVersion.serverSoftware.utf8) }
        variables["SCRIPT_NAME"] = Array(location.scriptName.utf8)
        variables["PATH_INFO"] = Array(location.pathInfo.utf8)
        variables["SCRIPT_FILENAME"] = Array(location.filename.utf8)
        variables["DOCUMENT_ROOT"] = Array(root.utf8)
        if location.pathInfo.isEmpty {
            variables["PATH_TRANSLATED"] = nil
        } else {
            variables["PATH_TRANSLATED"] = Array((root + location.pathInfo).utf8)
        }
        variables["HTTP_PROXY"] = nil
        variables = variables.filter { !$0.value.contains(0) && !$0.key.isEmpty && !$0.key.utf8.contains(UInt8(ascii: "=")) }
    }

    /// `NAME=value` entries for execve(2).
    public var entries: [[UInt8]] {
        variables.keys.sorted().map { Array($0.utf8) + [UInt8(ascii: "=")] + variables[$0]! }
    }
}
