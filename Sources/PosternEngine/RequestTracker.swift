import NIOCore
import PosternCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Follows one request from the gateway contract to its last body byte and reports it to the
/// ``RequestObserver`` exactly once: when a byte body is handed over, when a streamed body has
/// been written, or — if the adapter never writes the stream (HEAD, a failed connection) — when
/// the response is dropped.
final class RequestTracker: Sendable {
    /// Numbers the requests of this process, so that an observer can pair a start with its end.
    private static let nextID = Atomic<Int>(0)

    private let id: Int
    private let observer: any RequestObserver
    private let environ: Environ
    private let started: ContinuousClock.Instant
    private let startedAt: Double
    private let state = Mutex<(done: Bool, status: Int, bytes: Int, timedOut: Bool)>((false, 0, 0, false))

    init(observer: any RequestObserver, environ: Environ) {
        self.observer = observer
        self.environ = environ
        self.started = .now
        self.startedAt = RequestRecord.wallClockNow()
        self.id = Self.nextID.add(1, ordering: .relaxed).newValue
        observer.requestStarted(environ, id: id)
    }

    /// Reports the request (once).
    func finish(status: Int, bytes: Int, timedOut: Bool) {
        let first = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            return true
        }
        guard first else { return }
        var record = RequestRecord(environ: environ, status: status, bytes: bytes, startedAt: startedAt, duration: .now - started, timedOut: timedOut)
        record.id = id
        observer.requestFinished(record)
    }

    /// The response as the adapter will write it: a streamed body counts its bytes and reports
    /// when written.
    func observe(_ response: Response, timedOut: Bool) -> Response {
        switch response.body.storage {
        case .bytes(let buffer):
            finish(status: response.status.code, bytes: buffer.readableBytes, timedOut: timedOut)
            return response
        case .stream(let length, let write):
            state.withLock {
                $0.status = response.status.code
                $0.timedOut = timedOut
            }
            var observed = response
            observed.body = ResponseBody(
                storage: .stream(length: length) { [self] writer in
                    let counting = CountingBodyWriter(writer)
                    defer { finish(status: response.status.code, bytes: counting.count, timedOut: timedOut) }
                    try await write(counting)
                })
            return observed
        }
    }

    deinit {
        let (done, status, timedOut) = state.withLock { ($0.done, $0.status, $0.timedOut) }
        if !done {
            var record = RequestRecord(environ: environ, status: status, bytes: 0, startedAt: startedAt, duration: .now - started, timedOut: timedOut)
            record.id = id
            observer.requestFinished(record)
        }
    }
}

/// Passes writes through and counts the bytes.
final class CountingBodyWriter: ResponseBodyWriter {
    private let inner: any ResponseBodyWriter
    private let written = Atomic<Int>(0)

    init(_ inner: any ResponseBodyWriter) { self.inner = inner }

    var count: Int { written.load(ordering: .relaxed) }

    func write(_ buffer: ByteBuffer) async throws {
        written.add(buffer.readableBytes, ordering: .relaxed)
        try await inner.write(buffer)
    }
}
