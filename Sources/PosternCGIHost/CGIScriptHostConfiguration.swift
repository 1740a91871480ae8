/// The settings of a ``CGIScriptHost``: the root, the time and process limits, the passed environment.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How `postern serve --cgi-root DIR` runs legacy CGI scripts.
public struct CGIScriptHostConfiguration: Sendable {
    /// The directory scripts are confined to (`--cgi-root`); resolved with realpath(3) at start.
    public var root: String
    /// A script running longer is stopped (SIGTERM, then SIGKILL after ``killGraceSeconds``);
    /// a client still waiting for the head gets 504 (`--cgi-timeout`). Default 60 s.
    public var timeoutSeconds: Double = 60
    /// Time between SIGTERM and SIGKILL. Default 2 s.
    public var killGraceSeconds: Double = 2
    /// Most scripts running at once (`--cgi-max-concurrency`). Excess requests wait in FIFO order
    /// for up to ``queueWaitSeconds``, then get 503. Default 16.
    public var maxConcurrency: Int = 16
    /// How long an excess request waits for a free slot before 503. Default 10 s.
    public var queueWaitSeconds: Double = 10
    /// Names copied from the gateway's own environment into every script's (`--pass-env`).
    /// Nothing else of the gateway's environment reaches a script.
    public var passEnvironment: [String] = []
    /// `PATH` for scripts unless `PATH` is passed with `--pass-env`.
    public var defaultPath: String = "/usr/local/bin:/usr/bin:/bin"
    /// Most internal redirects (a local `Location` without `Status`, RFC 3875 §6.2.2) per request.
    /// Default 10, as Apache's `LimitInternalRecursion`.
    public var maxInternalRedirects: Int = 10
    /// Largest script response head. Default 64 KiB.
    public var maxHeadBytes: Int = 64 * 1024
    /// Most bytes a script may write to its stdout, head and body (`--cgi-max-output`); 0 means
    /// no limit. Past it the script's process group is stopped: a response not yet started is
    /// answered 502, one already streaming is cut short (never ended as if complete). Default 0.
    public var maxOutputBytes: Int = 0
    /// After a script has exited, or its response has ended, the other one may take this long
    /// before the process group is stopped (SIGTERM, then SIGKILL after ``killGraceSeconds``).
    /// Default 1 s.
    public var lingerSeconds: Double = 1
    /// The URL prefix the front-end maps to the root (`--mount`, which also makes SCRIPT_NAME the
    /// prefix and PATH_INFO the rest): a request under it is resolved by its PATH_INFO alone
    /// (`/legacy/form.py` finds `form.py` in the root), and the script's SCRIPT_NAME is the prefix
    /// and its own path (`/legacy/form.py`). Without it the whole path is resolved under the root.
    public var mountPrefix: String?
    /// How long a request's own thread waits for a script without a request body to answer
    /// and exit, when that thread serves the request alone (an accept thread: a one-request
    /// connection, as nginx and Apache send by default), before the script's run goes on in
    /// tasks of its own: most scripts finish within it and cost no task, no reactor and no
    /// thread hop (``WaitHerePolicy`` stops waiting while most scripts outlast it). Default
    /// 5 ms, or `POSTERN_CGI_WAIT_MS` from the environment (at most 1000); 0: never wait.
    public var waitHereMilliseconds: Int = Self.defaultWaitHereMilliseconds

    static let defaultWaitHereMilliseconds = getenv("POSTERN_CGI_WAIT_MS").flatMap { Int(String(cString: $0)) }.map { min(max(0, $0), 1000) } ?? 5

    public init(root: String) {
        self.root = root
    }
}
