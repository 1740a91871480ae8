import NIOCore
import PosternCore

#if canImport(Glibc)
import Glibc
#endif

/// The operations demo the live tests drive: `…/pid` names the serving process, `…/sleep?ms=N`
/// sleeps (honouring cancellation), `…/stubborn?ms=N` sleeps and ignores cancellation,
/// `…/block?ms=N` blocks its thread (a plain `usleep`, as a synchronous driver would),
/// `…/no-content-type` breaks the contract (a 200 without Content-Type, for `--validate`),
/// anything else says hello.
public struct OpsDemo: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        let path = environ.scriptName + environ.pathInfo
        let milliseconds = Self.milliseconds(environ["QUERY_STRING"] ?? "")
        if path.hasSuffix("/pid") { return .text("pid \(getpid())\n") }
        if path.hasSuffix("/sleep") {
            try await Task.sleep(for: .milliseconds(milliseconds))
            return .text("slept \(milliseconds) ms in \(getpid())\n")
        }
        if path.hasSuffix("/block") {
            // Blocks its thread, as a synchronous driver or a `sleep` in an application does:
            // the event loop it runs on answers nothing meanwhile (--harakiri's case).
            usleep(UInt32(milliseconds) * 1000)
            return .text("blocked \(milliseconds) ms in \(getpid())\n")
        }
        if path.hasSuffix("/no-content-type") { return Response(status: .ok, body: .init(string: "untyped\n")) }
        if path.hasSuffix("/stubborn") {
            // Ignores cancellation without spinning: a detached task is not cancelled with this one,
            // and awaiting its value waits out the whole sleep.
            await Task.detached { try? await Task.sleep(for: .milliseconds(milliseconds)) }.value
            return .text("stubborn \(milliseconds) ms\n")
        }
        return .text("Hello, World!\n")
    }

    static func milliseconds(_ query: String) -> Int {
        for pair in query.split(separator: "&") where pair.hasPrefix("ms=") {
            return min(Int(pair.dropFirst(3)) ?? 0, 600_000)
        }
        return 0
    }
}
