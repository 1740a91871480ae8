import NIOCore
import Synchronization

/// The shared state behind a ``RequestBody`` and its ``RequestBodySource``: a single-producer,
/// single-consumer byte queue with a high watermark.
final class BodyStreamState: Sendable {
    private struct State {
        var chunks = CircularBuffer<ByteBuffer>()
        var bufferedBytes = 0
        var receivedBytes = 0
        /// `nil` while open; `.success` at a clean end; `.failure` once failed.
        var end: Result<Void, any Error>?
        /// Unsafe rather than checked: it is resumed once, under the lock, and it is a frozen
        /// type, so a CGI program does not look up `any Error: Error` at start to lay it out.
        var consumer: UnsafeContinuation<ByteBuffer?, any Error>?
        /// Resumes a producer waiting for the queue to fall below the watermark: a suspended
        /// ``yield(_:)`` or the callback of an ``offer(_:whenReady:)`` that found the queue full.
        var producer: (@Sendable () -> Void)?
        var iteratorClaimed = false
        var discarding = false
    }

    private let state = Mutex(State())
    private let expectedLength: Int?
    private let highWatermark: Int

    init(expectedLength: Int?, highWatermark: Int) {
        self.expectedLength = expectedLength
        self.highWatermark = max(1, highWatermark)
    }

    func preload(_ bytes: ByteBuffer) {
        state.withLock {
            if bytes.readableBytes > 0 { $0.chunks.append(bytes) }
            $0.bufferedBytes = bytes.readableBytes
            $0.receivedBytes = bytes.readableBytes
            $0.end = .success(())
        }
    }

    func claimIterator() -> Bool {
        state.withLock { state in
            defer { state.iteratorClaimed = true }
            return !state.iteratorClaimed
        }
    }

    var hasIterator: Bool { state.withLock { $0.iteratorClaimed } }

    var receivedBytes: Int { state.withLock { $0.receivedBytes } }

    // MARK: Producer

    func yield(_ buffer: ByteBuffer) async -> RequestBodySource.YieldResult {
        switch offer(buffer, whenReady: nil) {
        case .accepted: return .accepted
        case .dropped: return .dropped
        case .lengthExceeded: return .lengthExceeded
        case .full:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.bufferedBytes < highWatermark || state.end != nil || state.discarding { return true }
                    state.producer = { continuation.resume() }
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            return .accepted
        }
    }

    /// The synchronous producer side, for an adapter that runs on an event loop and cannot
    /// suspend: adds the chunk like ``yield(_:)`` but never waits. `.full` means the chunk was
    /// buffered and the queue is at the high watermark: stop reading from the peer until
    /// `whenReady` is called (once: when the application has read the queue down, or stopped
    /// reading, or the body ended). ``yield(_:)`` passes no `whenReady` and waits itself.
    func offer(_ buffer: ByteBuffer, whenReady: (@Sendable () -> Void)?) -> RequestBodySource.OfferResult {
        enum Action {
            case done(RequestBodySource.OfferResult)
            case resume(UnsafeContinuation<ByteBuffer?, any Error>, Result<ByteBuffer?, any Error>, RequestBodySource.OfferResult)
        }
        let action: Action = state.withLock { state in
            state.receivedBytes += buffer.readableBytes
            if state.end != nil || state.discarding { return .done(.dropped) }
            if let expected = expectedLength, state.receivedBytes > expected {
                let error = RequestBodyError.lengthMismatch(expected: expected, received: state.receivedBytes)
                state.end = .failure(error)
                state.chunks.removeAll()
                state.bufferedBytes = 0
                if let consumer = state.consumer {
                    state.consumer = nil
                    return .resume(consumer, .failure(error), .lengthExceeded)
                }
                return .done(.lengthExceeded)
            }
            guard buffer.readableBytes > 0 else { return .done(.accepted) }
            if let consumer = state.consumer {
                state.consumer = nil
                return .resume(consumer, .success(buffer), .accepted)
            }
            state.chunks.append(buffer)
            state.bufferedBytes += buffer.readableBytes
            guard state.bufferedBytes >= highWatermark else { return .done(.accepted) }
            if let whenReady { state.producer = whenReady }
            return .done(.full)
        }
        switch action {
        case .done(let result):
            return result
        case .resume(let consumer, let value, let result):
            consumer.resume(with: value)
            return result
        }
    }

    func finish() -> RequestBodyError? {
        let (consumer, mismatch): (UnsafeContinuation<ByteBuffer?, any Error>?, RequestBodyError?) = state.withLock { state in
            guard state.end == nil else { return (nil, nil) }
            if let expected = expectedLength, state.receivedBytes != expected {
                let error = RequestBodyError.lengthMismatch(expected: expected, received: state.receivedBytes)
                state.end = .failure(error)
                state.chunks.removeAll()
                state.bufferedBytes = 0
                defer { state.consumer = nil }
                return (state.consumer, error)
            }
            state.end = .success(())
            // A waiting consumer has an empty queue: the end is its answer.
            defer { state.consumer = nil }
            return (state.consumer, nil)
        }
        if let consumer {
            if let mismatch { consumer.resume(throwing: mismatch) } else { consumer.resume(returning: nil) }
        }
        return mismatch
    }

    func fail(_ error: any Error) {
        let (consumer, producer) = state.withLock { state in
            if state.end == nil {
                state.end = .failure(error)
                state.chunks.removeAll()
                state.bufferedBytes = 0
            }
            defer {
                state.consumer = nil
                state.producer = nil
            }
            return (state.consumer, state.producer)
        }
        consumer?.resume(throwing: error)
        producer?()
    }

    func discardUnread() {
        let producer = state.withLock { state in
            state.discarding = true
            state.chunks.removeAll()
            state.bufferedBytes = 0
            defer { state.producer = nil }
            return state.producer
        }
        producer?()
    }

    // MARK: Consumer

    func next() async throws -> ByteBuffer? {
        enum Action {
            case value(ByteBuffer?, (@Sendable () -> Void)?)
            case error(any Error)
            case wait
        }
        let action: Action = state.withLock { state in
            if let chunk = state.chunks.popFirst() {
                state.bufferedBytes -= chunk.readableBytes
                var producer: (@Sendable () -> Void)?
                if state.bufferedBytes < highWatermark / 2 || state.chunks.isEmpty {
                    producer = state.producer
                    state.producer = nil
                }
                return .value(chunk, producer)
            }
            switch state.end {
            case .success: return .value(nil, nil)
            case .failure(let error): return .error(error)
            case nil:
                // The queue is empty: let a waiting producer go on.
                let producer = state.producer
                state.producer = nil
                return producer.map { .value(nil, $0) } ?? .wait
            }
        }
        switch action {
        case .value(let chunk, let producer):
            producer?()
            if chunk == nil, producer != nil { return try await next() }
            return chunk
        case .error(let error):
            throw error
        case .wait:
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ByteBuffer?, any Error>) in
                    enum Now {
                        case chunk(ByteBuffer?)
                        case error(any Error)
                        case parked
                    }
                    let now: Now = state.withLock { state in
                        if Task.isCancelled { return .error(CancellationError()) }
                        if let chunk = state.chunks.popFirst() {
                            state.bufferedBytes -= chunk.readableBytes
                            return .chunk(chunk)
                        }
                        switch state.end {
                        case .success: return .chunk(nil)
                        case .failure(let error): return .error(error)
                        case nil:
                            state.consumer = continuation
                            return .parked
                        }
                    }
                    switch now {
                    case .chunk(let chunk): continuation.resume(returning: chunk)
                    case .error(let error): continuation.resume(throwing: error)
                    case .parked: break
                    }
                }
            } onCancel: {
                let consumer = state.withLock { state in
                    defer { state.consumer = nil }
                    return state.consumer
                }
                consumer?.resume(throwing: CancellationError())
            }
        }
    }
}
