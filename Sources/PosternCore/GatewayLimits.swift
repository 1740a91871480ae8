/// Every length and count the wire can claim, bounded in one place.
///
/// Each protocol checks a declared length against these before reading (never trust a length:
/// libfcgi CVE-2025-23016, Apache CVE-2020-11984).
public struct GatewayLimits: Sendable, Hashable {
    /// Largest request body, in bytes (HTTP answers 413; other protocols fail the request).
    /// Default 4 GiB.
    public var maxBodyBytes: Int = 4 << 30
    /// Largest request head: HTTP request line and headers, FastCGI params, SCGI netstring.
    /// Default 128 KiB.
    public var maxHeaderBytes: Int = 128 * 1024
    /// Largest uwsgi vars block. The wire format allows 65535; uWSGI's own 4096-byte default is
    /// its most reported error. Default 65535.
    public var maxUWSGIVarsBytes: Int = 65535
    /// Most concurrent requests on one multiplexed FastCGI connection (FCGI_MAX_REQS).
    /// Default 64.
    public var maxRequestsPerConnection: Int = 64
    /// Most FCGI_PARAMS records one FastCGI request may use for its params stream: front-ends
    /// send one or a few; a flood of tiny records is refused. Default 4096.
    public var maxFastCGIParamsRecords: Int = 4096
    /// Most open connections per process (FCGI_MAX_CONNS). Default 1024.
    public var maxConnections: Int = 1024
    /// Unread request body bytes buffered per request before the reader is paused. Default 256 KiB.
    public var bodyBufferBytes: Int = 256 * 1024
    /// A connection idle this long between requests is closed. Default 60 s.
    public var idleTimeoutSeconds: Double = 60
    /// A request head not complete this long after the connection opened is refused. Default 30 s.
    public var headerTimeoutSeconds: Double = 30

    /// A request whose application has not answered this long is answered 504 and its task
    /// cancelled (`--timeout`); 0 means no limit. Default 0.
    public var requestTimeoutSeconds: Double = 0
    /// Most requests running the application at once in one process (`--max-concurrency`);
    /// excess requests wait for a slot. 0 means no bound. Default 0.
    public var maxConcurrency: Int = 0
    /// After a graceful shutdown starts, a connection that has not yet sent its first request
    /// gets this long to do so before it is closed (it was accepted, so its request is served:
    /// no request is dropped on reload). Default 1 s.
    public var drainGraceSeconds: Double = 1

    public init() {}
}
