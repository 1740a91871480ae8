// A test app that counts its live request tasks, to prove a gone client's task ends.
import Foundation
import NIOCore
import PosternCore
import Synchronization

/// Live request tasks of ``TrackedApp``: incremented when one starts, decremented when it ends
/// (normally, by an error, or by cancellation).
final class LiveTaskCounter: Sendable {
    private let value = Atomic<Int>(0)
    private let started = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)

    var live: Int { value.load(ordering: .sequentiallyConsistent) }
    var total: Int { started.load(ordering: .sequentiallyConsistent) }
    /// Requests whose body (or stream) went to the end without an error.
    var completed: Int { finished.load(ordering: .sequentiallyConsistent) }
    func enter() {
        value.add(1, ordering: .sequentiallyConsistent)
        started.add(1, ordering: .sequentiallyConsistent)
    }
    func leave() { value.subtract(1, ordering: .sequentiallyConsistent) }
    func complete() { finished.add(1, ordering: .sequentiallyConsistent) }

    /// Waits until `condition` holds or `timeout` passes; returns whether it held.
    func wait(timeout: Double, until condition: (LiveTaskCounter) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }
}

/// `/body` reads the whole body then answers; `/stream` answers with up to 4 GiB written in
/// 64 KiB chunks; anything else answers "ok". Each request counts as live until its body (or
/// stream) is done.
struct TrackedApp: Application {
    let counter: LiveTaskCounter

    func respond(to environ: Environ) async throws -> Response {
        counter.enter()
        let path = environ["PATH_INFO"] ?? ""
        if path == "/stream" {
            let counter = counter
            return Response(
                status: .ok, headers: ["Content-Type": "application/octet-stream"],
                body: .stream(length: nil) { writer in
                    defer { counter.leave() }
                    let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 65536)
                    for _ in 0..<65536 { try await writer.write(chunk) }
                    counter.complete()
                })
        }
        defer { counter.leave() }
        var received = 0
        if path == "/body" {
            for try await chunk in environ.body { received += chunk.readableBytes }
            counter.complete()
        }
        return .text("ok \(received)\n")
    }
}
