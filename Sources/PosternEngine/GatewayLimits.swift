import PosternCore

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
    public var maxHeaderBytes: Int = EnvironBuilder.defaultMaxBytes
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

    /// The most memory one process's connections can hold under these limits, for capacity
    /// planning: every one of ``maxConnections`` holding a head at the limit three times over
    /// (the decoder's buffer, grown by doubling, and the request's variables built from it) and
    /// ``bodyBufferBytes`` of unread body twice over (its chunks are slices of SwiftNIO's read
    /// buffers and keep them whole), plus 64 KiB each for the channel and its read buffer, plus
    /// 64 MiB for the process itself. The defaults give 1 GiB. A live test
    /// (`MemoryUnderAttackTests`) holds 2,000 such clients against it on every protocol.
    /// What an application allocates for itself is not counted.
    public var worstCaseMemoryBytes: Int {
        let head = max(maxHeaderBytes, maxUWSGIVarsBytes)
        return maxConnections * (3 * head + 2 * bodyBufferBytes + 64 * 1024) + 64 << 20
    }
}
