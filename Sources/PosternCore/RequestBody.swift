import NIOCore

/// The request body: a one-pass async sequence of byte chunks (PEP 3333 `wsgi.input`).
///
/// Adapters feed it through a ``RequestBodySource`` as bytes arrive; when more than the high
/// watermark sits unread, the source's `yield` suspends, and so does the adapter's read from the
/// socket: a slow application slows its client instead of filling memory.
///
/// The body can be iterated once; a second iteration throws ``RequestBodyError/alreadyConsumed``.
public struct RequestBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let state: BodyStreamState

    init(state: BodyStreamState) {
        self.state = state
    }

    /// A body with no bytes.
    public static var empty: RequestBody { RequestBody(bytes: ByteBuffer()) }

    /// A body that holds `bytes`, already complete.
    public init(bytes: ByteBuffer) {
        let state = BodyStreamState(expectedLength: bytes.readableBytes, highWatermark: .max)
        state.preload(bytes)
        self.state = state
    }

    /// A streamed body and the source an adapter feeds it through.
    ///
    /// - Parameters:
    ///   - expectedLength: CONTENT_LENGTH, the single truth for the length: a stream that ends
    ///     short of it or runs past it fails with ``RequestBodyError/lengthMismatch(expected:received:)``.
    ///     `nil` means the body ends where the stream ends (HTTP chunked, uwsgi without a length).
    ///   - highWatermark: unread bytes above which ``RequestBodySource/yield(_:)`` suspends.
    public static func makeStream(
        expectedLength: Int?,
        highWatermark: Int = 256 * 1024
    ) -> (body: RequestBody, source: RequestBodySource) {
        let state = BodyStreamState(expectedLength: expectedLength, highWatermark: highWatermark)
        return (RequestBody(state: state), RequestBodySource(state: state))
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(state: state, isFirst: state.claimIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let state: BodyStreamState
        let isFirst: Bool

        public mutating func next() async throws -> ByteBuffer? {
            guard isFirst else { throw RequestBodyError.alreadyConsumed }
            return try await state.next()
        }
    }

    /// Whether some code has started reading the body.
    public var hasBeenRead: Bool { state.hasIterator }

    /// Reads the whole body into one buffer.
    ///
    /// - Throws: ``RequestBodyError/tooLarge(limit:)`` past `maxBytes`, or whatever the stream throws.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var result = ByteBuffer()
        for try await var chunk in self {
            guard result.readableBytes + chunk.readableBytes <= maxBytes else {
                throw RequestBodyError.tooLarge(limit: maxBytes)
            }
            result.writeBuffer(&chunk)
        }
        return result
    }
}

/// Why reading a request body failed.
public enum RequestBodyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The body was iterated a second time: it is a one-pass stream.
    case alreadyConsumed
    /// The stream's end and CONTENT_LENGTH disagree (RFC 3875 §4.2: the body is exactly
    /// CONTENT_LENGTH bytes); the request is not trusted.
    case lengthMismatch(expected: Int, received: Int)
    /// The body is larger than a configured limit.
    case tooLarge(limit: Int)
    /// The client went away before the body was complete.
    case disconnected

    public var description: String {
        switch self {
        case .alreadyConsumed: return "the request body was read twice (it is a one-pass stream)"
        case .lengthMismatch(let expected, let received):
            return "request body length mismatch: CONTENT_LENGTH is \(expected), the stream carried \(received) bytes"
        case .tooLarge(let limit): return "the request body exceeds the limit of \(limit) bytes"
        case .disconnected: return "the client disconnected before the request body was complete"
        }
    }
}

/// The adapter's end of a ``RequestBody``: yields chunks as they arrive, then finishes it.
public struct RequestBodySource: Sendable {
    let state: BodyStreamState

    /// What happened to a yielded chunk.
    public enum YieldResult: Sendable, Equatable {
        /// Buffered for the application.
        case accepted
        /// The application no longer reads (it responded, or stopped); the bytes were dropped.
        /// Keep reading to drain the request, as front-ends expect.
        case dropped
        /// The chunk runs past CONTENT_LENGTH; the body has failed with a length mismatch.
        case lengthExceeded
    }

    /// Adds a chunk, suspending while the application has more than the high watermark unread.
    @discardableResult
    public func yield(_ buffer: ByteBuffer) async -> YieldResult {
        await state.yield(buffer)
    }

    /// What ``offer(_:whenReady:)`` did with a chunk.
    public enum OfferResult: Sendable, Equatable {
        /// Buffered; the queue has room for more.
        case accepted
        /// Buffered, and the queue is at the high watermark: read no more until `whenReady`.
        case full
        /// The application no longer reads; the bytes were dropped (keep draining).
        case dropped
        /// The chunk runs past CONTENT_LENGTH; the body has failed with a length mismatch.
        case lengthExceeded
    }

    /// Adds a chunk without suspending, for adapters driven by an event loop (see
    /// ``CloseDelimitedRequestHandler``); backpressure is signalled by `.full` and `whenReady`.
    public func offer(_ buffer: ByteBuffer, whenReady: @escaping @Sendable () -> Void) -> OfferResult {
        state.offer(buffer, whenReady: whenReady)
    }

    /// Ends the body. Returns ``RequestBodyError/lengthMismatch(expected:received:)`` (and fails
    /// the body with it) when fewer than CONTENT_LENGTH bytes arrived; `nil` when all is well.
    @discardableResult
    public func finish() -> RequestBodyError? {
        state.finish()
    }

    /// Fails the body: the application's next read throws `error`.
    public func fail(_ error: any Error) {
        state.fail(error)
    }

    /// The application is done with the request: drop what is buffered and whatever comes later.
    public func discardUnread() {
        state.discardUnread()
    }

    /// Bytes received so far.
    public var receivedBytes: Int { state.receivedBytes }
}
