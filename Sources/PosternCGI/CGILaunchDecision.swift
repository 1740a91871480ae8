/// Whether a process was started as a CGI program (RFC 3875 §4, §4.4): decided before argv parsing.

/// Decides CGI program mode from the environment and argv, before any argument parser runs.
///
/// A front-end starts a CGI program with `GATEWAY_INTERFACE` in its environment (RFC 3875
/// §4.1.4). For an ISINDEX-style query (§4.4: no unencoded `=`), Apache also passes the query's
/// words as argv, so argv cannot be parsed in this mode: an argument parser would reject them.
/// Rules, in order:
/// 1. no `GATEWAY_INTERFACE` → not CGI;
/// 2. fd 0 is a listening socket → not CGI (FastCGI wins: lighttpd passes its environment on);
/// 3. no arguments, or exactly the ISINDEX words of `QUERY_STRING` → CGI;
/// 4. a listener flag (`--http`, `--fastcgi`, `--scgi`, `--uwsgi`) → not CGI: an operator
///    started a server from a shell that happens to carry CGI variables;
/// 5. anything else → CGI (arguments ignored).
///
/// Rule 3 comes before rule 4 on purpose: a request for `/cgi-bin/app?--http+0.0.0.0:80` must
/// never start a listener.
public enum CGILaunchDecision {
    public static let listenerFlags = ["--http", "--fastcgi", "--scgi", "--uwsgi"]

    public static func isCGIRequest(arguments: [String], gatewayInterface: String?, queryString: String?, fd0IsListening: Bool) -> Bool {
        guard gatewayInterface != nil, !fd0IsListening else { return false }
        let words = Array(arguments.dropFirst())
        if words.isEmpty || words == ISINDEXQuery.words(queryString ?? "") { return true }
        let hasListenerFlag = words.contains { word in
            listenerFlags.contains { word == $0 || word.hasPrefix($0 + "=") }
        }
        return !hasListenerFlag
    }
}
