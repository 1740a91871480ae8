import Logging
import NIOCore
import PosternCore
import PosternEngine
import Synchronization

/// CGI program mode (RFC 3875): serve the one request in this process's environment and stdin.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs an ``Application`` as a CGI/1.1 program: one request, one process.
///
/// - Meta-variables come from the environment (RFC 3875 §4.1) through ``EnvironBuilder``, the
///   one normalizer, so `HTTP_PROXY` is dropped here as everywhere.
/// - The body is exactly `CONTENT_LENGTH` bytes of stdin (§4.2), streamed to the application; a
///   short stdin fails the body with a length mismatch.
/// - The response goes to stdout as a CGI response (§6: `Status:`, fields, blank line, body),
///   through the engine's `FramedResponseSender` like every protocol's; streamed bodies are
///   written chunk by chunk with write(2).
/// - Errors go to stderr (the front-end's error log).
///
/// No event loop, no Foundation, no thread pool (``MainQueueExecutor``): start-up time is the
/// whole cost of CGI.
public enum CGIProgram {
    /// Largest stdin read at once.
    static let readChunkBytes = 64 * 1024

    /// Serves the request and returns the process exit status: 0 once a response was written,
    /// 1 when stdout failed.
    ///
    /// Main-actor isolated so that a caller on the main thread (an async `main`) reaches the
    /// executor preference without first hopping to the global thread pool.
    @MainActor
    public static func run(_ application: any Application, environment: [String: String], limits: GatewayLimits = GatewayLimits()) async -> Int32 {
        let executor = MainQueueExecutor()
        return await withTaskExecutorPreference(executor) {
            await serve(application, variables: .dictionary(environment), limits: limits, executor: executor)
        }
    }

    /// Serves the request on the calling thread and returns the exit status: for a synchronous
    /// `main` (see `examples/hello-cgi`), which starts fastest, most of all when linked with
    /// `-static-executable` (``CGIThreadExecutor`` says why).
    public static func runOnThisThread(_ application: any Application, environment: [String: String], limits: GatewayLimits = GatewayLimits()) -> Int32 {
        runOnThisThread(application, variables: .dictionary(environment), limits: limits)
    }

    /// The same, with the request's variables read straight from the process environment
    /// (`environ`), without a `[String: String]` in between: the fastest start (a CGI-only
    /// binary's `main`: `exit(CGIProgram.runOnThisThread(MyApp()))`).
    public static func runOnThisThread(_ application: any Application, limits: GatewayLimits = GatewayLimits()) -> Int32 {
        runOnThisThread(application, variables: .process, limits: limits)
    }

    private static func runOnThisThread(_ application: any Application, variables: Variables, limits: GatewayLimits) -> Int32 {
        let executor = CGIThreadExecutor()
        let outcome = Outcome()
        Task(executorPreference: executor) {
            let result = await serve(application, variables: variables, limits: limits, executor: executor)
            outcome.status.withLock { $0 = result }
        }
        executor.run { outcome.status.withLock { $0 != nil } }
        return outcome.status.withLock { $0 ?? 1 }
    }

    /// The request's exit status, set by its task. A class field rather than a captured
    /// `Mutex`: a captured one is boxed, and destroying the box makes the runtime look up
    /// `UInt32: AtomicRepresentable` (a scan of every conformance in the image) at each start.
    private final class Outcome: Sendable {
        let status = Mutex<Int32?>(nil)
    }

    /// Where the request's meta-variables come from (RFC 3875 §4.1).
    enum Variables: Sendable {
        case dictionary([String: String])
        /// The process environment, read entry by entry.
        case process

        func add(to builder: inout EnvironBuilder) {
            switch self {
            case .dictionary(let environment):
                for (name, value) in environment { builder.addVariable(name: name, value: value) }
            case .process:
                CGIProgram.forEachEnvironmentEntry { name, value in builder.addVariable(name: name, value: value) }
            }
        }
    }

    /// The process environment, read straight from `environ` (no Foundation: CGI start-up time
    /// is the whole cost of CGI, and Foundation's is measurable).
    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        forEachEnvironmentEntry { name, value in result[name] = value }
        return result
    }

    /// Calls `body` with each `NAME=value` entry of `environ`, split at the first `=`: the
    /// bytes are split before they become strings (a `Character` search costs a CGI start more
    /// than the rest of reading the request).
    static func forEachEnvironmentEntry(_ body: (String, String) -> Void) {
        var pointer = environ
        while let entry = pointer.pointee {
            let length = strlen(entry)
            entry.withMemoryRebound(to: UInt8.self, capacity: length) { start in
                let bytes = UnsafeBufferPointer(start: start, count: length)
                guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return }
                body(
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[..<equals]), as: UTF8.self),
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[(equals + 1)...]), as: UTF8.self))
            }
            pointer += 1
        }
    }

    static func serve(_ application: any Application, variables: Variables, limits: GatewayLimits, executor: any TaskExecutor) async -> Int32 {
        let logger = Logger(label: "postern.cgi") { StreamLogHandler.standardError(label: $0) }
        let errors = ErrorStream { message in
            var copy = message
            copy.withUTF8 { _ = FileDescriptorIO.writeAll(2, UnsafeRawBufferPointer($0)) }
        }
        var builder = EnvironBuilder(gatewayProtocol: .cgi, maxBytes: limits.maxHeaderBytes)
        variables.add(to: &builder)
        // RequestBeginning.check's verdict, without a Result of the normalizer's (see
        // RequestBeginning.refusal).
        var normalized: EnvironBuilder.Result?
        var refusal: RequestRefusal?
        do {
            let result = try (consume builder).finish()
            refusal = RequestBeginning.refusal(of: result, maxBodyBytes: limits.maxBodyBytes)
            normalized = result
        } catch {
            refusal = RequestRefusal(.badRequest, error.description)
        }
        guard let normalized, refusal == nil else {
            let refusal = refusal ?? RequestRefusal(.badRequest, "no variables")
            // Standard error is the front-end's error log (RFC 3875 §6.1 leaves it to the server).
            errors.write("postern: request refused (\(refusal.status.code)): \(refusal.reason)")
            return write(Response.error(refusal.status))
        }
        let body = makeBody(contentLength: normalized.contentLength ?? 0, errors: errors, executor: executor)
        let environ = Environ(normalized, gatewayProtocol: .cgi, body: body, errors: errors, flags: .cgi)
        let configuration = GatewayConfiguration(application: application, limits: limits, flags: .cgi, logger: logger)
        let response: Response
        do {
            response = try await configuration.respond(to: environ, logger: logger)
        } catch {
            response = .error(.internalServerError)
        }
        return await write(response, logger: logger)
    }

    /// The body: nothing, or a stream fed from stdin by blocking reads of at most CONTENT_LENGTH
    /// bytes in all (RFC 3875 §4.2: the script must not read past it).
    /// The reader runs on the main thread too: it blocks in read(2) only while the application
    /// waits for body bytes anyway, and yields to it above the body's high watermark.
    static func makeBody(contentLength: Int, errors: ErrorStream, executor: any TaskExecutor) -> RequestBody {
        guard contentLength > 0 else { return .empty }
        let (body, source) = RequestBody.makeStream(expectedLength: contentLength)
        Task(executorPreference: executor) {
            var remaining = contentLength
            while remaining > 0 {
                guard let chunk = FileDescriptorIO.readChunk(0, upTo: min(remaining, readChunkBytes)) else {
                    errors.write("postern: reading stdin failed (errno \(errno))")
                    source.fail(RequestBodyError.disconnected)
                    return
                }
                if chunk.isEmpty { break }
                remaining -= chunk.count
                if await source.yield(ByteBuffer(bytes: chunk)) != .accepted { return }
            }
            if let error = source.finish() { errors.write("postern: \(error)") }
        }
        return body
    }

    /// Writes a response known to be safe and whole (an error page).
    static func write(_ response: Response) -> Int32 {
        var buffer = ByteBuffer()
        if case .bytes(let body) = response.body.storage { try? CloseDelimitedFraming.cgiProgram.writeWhole(response, body: body, into: &buffer) }
        return StandardOutput.writeAll(buffer) ? 0 : 1
    }

    /// Writes the response to stdout through the engine's ``FramedResponseSender``: one
    /// write(2) for an in-memory body, one per chunk for a stream (the head with the first).
    static func write(_ response: Response, logger: Logger) async -> Int32 {
        let output = StandardOutput()
        guard case .finished(let end) = await FramedResponseSender.sendUpToEnd(response, framing: CloseDelimitedFraming.cgiProgram, to: output, logger: logger)
        else {
            return 1
        }
        return StandardOutput.writeAll(end) ? 0 : 1
    }
}

/// Stdout as the response's output, written with write(2).
struct StandardOutput: FramedResponseOutput {
    /// Throws the failed write's errno (EPIPE: the front-end went away, as ``PeerGone`` tells).
    func send(_ bytes: ByteBuffer) async throws {
        guard Self.writeAll(bytes) else { throw IOError(errnoCode: errno, reason: "write(2) to stdout") }
    }

    static func writeAll(_ bytes: ByteBuffer) -> Bool {
        bytes.withUnsafeReadableBytes { FileDescriptorIO.writeAll(1, $0) }
    }
}
