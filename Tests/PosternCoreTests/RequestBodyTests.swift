import NIOCore
import PosternCore
import Synchronization
import Testing

@Suite("The request body stream")
struct RequestBodyTests {
    @Test("chunks arrive in order and the stream ends at CONTENT_LENGTH")
    func inOrder() async throws {
        let (body, source) = RequestBody.makeStream(expectedLength: 6)
        async let produced: Void = {
            await source.yield(ByteBuffer(string: "abc"))
            await source.yield(ByteBuffer(string: "def"))
            source.finish()
        }()
        let all = try await body.collect(upTo: 100)
        await produced
        #expect(String(buffer: all) == "abcdef")
    }

    @Test("a stream that ends short of CONTENT_LENGTH fails")
    func short() async throws {
        let (body, source) = RequestBody.makeStream(expectedLength: 10)
        await source.yield(ByteBuffer(string: "abc"))
        #expect(source.finish() == .lengthMismatch(expected: 10, received: 3))
        await #expect(throws: RequestBodyError.lengthMismatch(expected: 10, received: 3)) {
            _ = try await body.collect(upTo: 100)
        }
    }

    @Test("bytes past CONTENT_LENGTH fail the body (no smuggled second request)")
    func long() async throws {
        let (body, source) = RequestBody.makeStream(expectedLength: 2)
        #expect(await source.yield(ByteBuffer(string: "abc")) == .lengthExceeded)
        await #expect(throws: RequestBodyError.lengthMismatch(expected: 2, received: 3)) {
            _ = try await body.collect(upTo: 100)
        }
    }

    @Test("the body is one-pass: a second iteration throws")
    func onePass() async throws {
        let body = RequestBody(bytes: ByteBuffer(string: "x"))
        _ = try await body.collect(upTo: 10)
        await #expect(throws: RequestBodyError.alreadyConsumed) { _ = try await body.collect(upTo: 10) }
    }

    @Test("the producer waits while the high watermark is reached, and goes on when the app reads")
    func backpressure() async throws {
        let (body, source) = RequestBody.makeStream(expectedLength: nil, highWatermark: 4)
        let yielded = Atomic<Int>(0)
        let producer = Task {
            for _ in 0..<4 {
                await source.yield(ByteBuffer(string: "abcd"))
                yielded.add(1, ordering: .relaxed)
            }
            source.finish()
        }
        try await Task.sleep(for: .milliseconds(100))
        // One chunk fills the buffer; the producer is parked on the first yield.
        let early = yielded.load(ordering: .relaxed)
        #expect(early <= 1)
        var iterator = body.makeAsyncIterator()
        var total = 0
        while let chunk = try await iterator.next() { total += chunk.readableBytes }
        await producer.value
        #expect(total == 16)
        let late = yielded.load(ordering: .relaxed)
        #expect(late == 4)
    }

    @Test("offer (the event-loop producer) reports a full queue and calls whenReady once the app reads")
    func offerBackpressure() async throws {
        let (body, source) = RequestBody.makeStream(expectedLength: 12, highWatermark: 4)
        let ready = Atomic<Int>(0)
        let whenReady: @Sendable () -> Void = { ready.add(1, ordering: .relaxed) }
        #expect(source.offer(ByteBuffer(string: "ab"), whenReady: whenReady) == .accepted)
        #expect(source.offer(ByteBuffer(string: "cdef"), whenReady: whenReady) == .full)
        #expect(ready.load(ordering: .relaxed) == 0)
        var iterator = body.makeAsyncIterator()
        #expect(try await iterator.next().map { String(buffer: $0) } == "ab")
        // 4 bytes still queued: at the watermark, not yet below half of it.
        #expect(ready.load(ordering: .relaxed) == 0)
        #expect(try await iterator.next().map { String(buffer: $0) } == "cdef")
        #expect(ready.load(ordering: .relaxed) == 1)
        #expect(source.offer(ByteBuffer(string: "ghijkl"), whenReady: whenReady) == .full)
        #expect(source.finish() == nil)
        #expect(try await iterator.next().map { String(buffer: $0) } == "ghijkl")
        #expect(try await iterator.next() == nil)
        // Past CONTENT_LENGTH: refused and the body failed.
        let (_, strict) = RequestBody.makeStream(expectedLength: 2, highWatermark: 64)
        #expect(strict.offer(ByteBuffer(string: "abc"), whenReady: whenReady) == .lengthExceeded)
        // After discardUnread, offers are dropped and a waiting producer is released.
        let (_, dropping) = RequestBody.makeStream(expectedLength: nil, highWatermark: 2)
        let before = ready.load(ordering: .relaxed)
        #expect(dropping.offer(ByteBuffer(string: "abcd"), whenReady: whenReady) == .full)
        dropping.discardUnread()
        #expect(ready.load(ordering: .relaxed) == before + 1)
        #expect(dropping.offer(ByteBuffer(string: "x"), whenReady: whenReady) == .dropped)
    }

    @Test("discardUnread releases a parked producer and drops later chunks")
    func discard() async throws {
        let (_, source) = RequestBody.makeStream(expectedLength: nil, highWatermark: 2)
        let producer = Task { () -> RequestBodySource.YieldResult in
            await source.yield(ByteBuffer(string: "abcd"))  // parks: over the watermark
            return await source.yield(ByteBuffer(string: "more"))
        }
        try await Task.sleep(for: .milliseconds(50))
        source.discardUnread()
        #expect(await producer.value == .dropped)
    }

    @Test("a reader waiting for bytes is cancelled with its task")
    func cancellation() async throws {
        let (body, _) = RequestBody.makeStream(expectedLength: 10)
        let reader = Task { try await body.collect(upTo: 100) }
        try await Task.sleep(for: .milliseconds(50))
        reader.cancel()
        await #expect(throws: CancellationError.self) { _ = try await reader.value }
    }

    @Test("collect refuses a body over its limit")
    func collectLimit() async throws {
        let body = RequestBody(bytes: ByteBuffer(string: "0123456789"))
        await #expect(throws: RequestBodyError.tooLarge(limit: 5)) { _ = try await body.collect(upTo: 5) }
    }
}
