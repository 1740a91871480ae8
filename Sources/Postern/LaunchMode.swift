import PosternCore

/// How a Postern binary was started, decided as libfcgi's `FCGX_IsCGI` does: a listener flag
/// wins; else a listening socket on fd 0 means a process manager spawned us for FastCGI
/// (mod_fcgid, lighttpd `bin-path`, spawn-fcgi) — tested before the environment, since lighttpd
/// passes its whole environment on; else `GATEWAY_INTERFACE` means a CGI request; else HTTP on
/// the development default.
public enum LaunchMode: Sendable, Equatable {
    case listeners([ListenerSpec])
    case fastCGIOnStandardInput
    case cgi
    case developmentHTTP

    /// The development default: HTTP on 127.0.0.1:8080.
    public static let defaultHTTPAddress = ListenAddress.tcp(host: "127.0.0.1", port: 8080)

    public static func detect(listeners: [ListenerSpec], environment: [String: String], fd0IsListening: () -> Bool = { isListeningSocket(0) }) -> LaunchMode {
        if !listeners.isEmpty { return .listeners(listeners) }
        if fd0IsListening() { return .fastCGIOnStandardInput }
        if environment["GATEWAY_INTERFACE"] != nil { return .cgi }
        return .developmentHTTP
    }
}
