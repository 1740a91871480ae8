/// One script run: pipes on the event loop, head parsing, body streaming, timeout, reaping.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix
import PosternCore
import Synchronization

/// Drives one spawned script from start to reaped, in its own task, and hands the response to
/// the request's task through three one-shot values:
///
/// ```
///  run task                              request task (CGIScriptHost.respond)
///  stdout → CGIResponseHeadParser ──head──► Response(status, headers, body: .stream)
///        ◄──────────────decision── body closure: .stream(writer) or .abandon
///  stdout chunks → writer ...
///  EOF, reap ────────────────────done──► body closure returns (or throws)
/// ```
/// The watchdog enforces the timeout: SIGTERM to the process group, SIGKILL after the grace
/// period, pipes closed; a head not yet sent becomes 504. A script's process group ends with its
/// request, as Apache ends a CGI child with its request's pool (apr_pool_note_subprocess,
/// APR_KILL_AFTER_TIMEOUT): once the script has exited or its response is over, the other gets
/// ``CGIScriptHostConfiguration/lingerSeconds``, then the group gets SIGTERM and, after the grace
/// period, SIGKILL. So a background child that keeps stdout open does not hold the response, one
/// that closes stdout and runs on does not hold a `--cgi-max-concurrency` slot, and nothing it
/// started outlives it in its group. Every path ends with the child reaped, after its group is
/// signalled (an unreaped script keeps its process id, so the group id is never another's).
final class CGIScriptRun: Sendable {
    enum HeadOutcome: Sendable {
        case head(CGIResponseHeadParser.Head, body: ByteBuffer)
        case failed(ResponseStatus, reason: String)
    }

    enum BodyDecision: Sendable {
        case stream(any ResponseBodyWriter)
        case abandon
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "the script exceeded the CGI timeout" }
    }

    struct OutputLimitExceeded: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "the script wrote more than \(limit) bytes (--cgi-max-output); its output was cut off" }
    }

    let head = OneShot<HeadOutcome>()
    let decision = OneShot<BodyDecision>()
    let done = OneShot<Result<Void, any Error>>()
    let process: CGIChildProcess
    let scriptName: String
    let isNPH: Bool
    private let timedOut = Atomic<Bool>(false)
    /// The response is over: stdout ended, or what is left of it is being drained.
    private let responseOver = Atomic<Bool>(false)
    /// Stdout reached its end (every writer closed it, or it was closed for them).
    private let stdoutClosed = Atomic<Bool>(false)
    private let channels = Mutex<[any Channel]>([])

    init(process: CGIChildProcess, scriptName: String, isNPH: Bool) {
        self.process = process
        self.scriptName = scriptName
        self.isNPH = isNPH
    }

    /// The client left or the response is not wanted: stop the script.
    func abandon() {
        decision.fulfill(.abandon)
        head.fulfill(.failed(.serviceUnavailable, reason: "abandoned"))
        process.signalGroup(SIGTERM)
    }

    /// Runs the script to the end. Never throws; always reaps.
    func run(body: RequestBody, group: any EventLoopGroup, configuration: CGIScriptHostConfiguration, errors: ErrorStream) async {
        let bootstrap = NIOPipeBootstrap(group: group)
        if let fd = process.stdinWrite {
            do {
                let stdin = try await bootstrap.takingOwnershipOfDescriptor(output: fd).get()
                Task { await Self.pump(body, into: stdin) }
            } catch {
                close(fd)
            }
        }
        let stdout: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        let stderr: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            stdout = try await bootstrap.takingOwnershipOfDescriptor(input: process.stdoutRead) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        } catch {
            close(process.stdoutRead)
            close(process.stderrRead)
            fail("cannot watch the script's stdout: \(error)")
            return
        }
        do {
            stderr = try await bootstrap.takingOwnershipOfDescriptor(input: process.stderrRead) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        } catch {
            close(process.stderrRead)
            stdout.channel.close(promise: nil)
            fail("cannot watch the script's stderr: \(error)")
            return
        }
        channels.withLock { $0 = [stdout.channel, stderr.channel] }

        await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                await self.watchdog(configuration)
                return true
            }
            tasks.addTask {
                await self.forward(stderr, to: errors)
                return false
            }
            tasks.addTask {
                await self.readStdout(stdout, configuration: configuration, errors: errors)
                self.responseOver.store(true, ordering: .releasing)
                self.stdoutClosed.store(true, ordering: .releasing)
                return false
            }
            await endGroup(configuration)
            var readers = 2
            while readers > 0, let isWatchdog = await tasks.next() {
                if !isWatchdog { readers -= 1 }
            }
            tasks.cancelAll()
        }
        await reap()
        if let status = process.tryReap(), status != 0 {
            errors.write("\(scriptName): \(CGIChildProcess.describe(status: status))")
        }
        // Nothing is left waiting, whatever happened.
        head.fulfill(.failed(.badGateway, reason: "the script ended without a response"))
        decision.fulfill(.abandon)
        done.fulfill(.failure(TimedOut()))
    }

    private func fail(_ reason: String) {
        head.fulfill(.failed(.internalServerError, reason: reason))
        decision.fulfill(.abandon)
        done.fulfill(.failure(CGIChildProcess.SpawnError(description: reason)))
        process.killAndReap()
    }

    /// Streams the request body to the script's stdin, then closes it; if the script stops
    /// reading, the rest of the body is drained and dropped.
    ///
    /// Each chunk is awaited until it is in the pipe (writeAndFlush's future): that is the
    /// backpressure, and it guarantees that closing stdin never discards queued bytes.
    static func pump(_ body: RequestBody, into stdin: any Channel) async {
        var iterator = body.makeAsyncIterator()
        do {
            while let chunk = try await iterator.next() {
                try await stdin.writeAndFlush(chunk).get()
            }
            try? await stdin.close().get()
        } catch {
            stdin.close(promise: nil)
            while (try? await iterator.next()) != nil {}
        }
    }

    /// Parses the head (RFC 3875 §6; a status line for `nph-` scripts, §5), hands it over, then
    /// streams or drains the rest.
    /// `--cgi-max-output` counts every byte, head included: past it, before the head is handed
    /// over the answer is 502, after it the response fails (the writer's connection is cut).
    private func readStdout(_ stdout: NIOAsyncChannel<ByteBuffer, ByteBuffer>, configuration: CGIScriptHostConfiguration, errors: ErrorStream) async {
        var parser = CGIResponseHeadParser(mode: isNPH ? .httpStatusLine : .cgi, maxHeadBytes: configuration.maxHeadBytes)
        let limit = configuration.maxOutputBytes > 0 ? configuration.maxOutputBytes : Int.max
        var written = 0
        do {
            try await stdout.executeThenClose { inbound, _ in
                var iterator = inbound.makeAsyncIterator()
                /// Stops the script and drains what it still writes: the response is over.
                func drain() async throws {
                    responseOver.store(true, ordering: .releasing)
                    while try await iterator.next() != nil {}
                }
                var delivered = false
                do {
                    while !delivered {
                        guard let chunk = try await iterator.next() else {
                            try parser.finish()
                            return
                        }
                        written += chunk.readableBytes
                        guard written <= limit else {
                            head.fulfill(.failed(.badGateway, reason: OutputLimitExceeded(limit: limit).description))
                            process.signalGroup(SIGTERM)
                            try await drain()
                            return
                        }
                        if case .head(let parsed, let body) = try parser.feed(chunk) {
                            delivered = head.fulfill(.head(parsed, body: body))
                            if !delivered { break }
                        }
                    }
                } catch let error as CGIResponseHeadParser.ParseError {
                    head.fulfill(.failed(.badGateway, reason: "no valid CGI header block: \(error)"))
                    process.signalGroup(SIGTERM)
                }
                guard delivered, case .stream(let writer) = await decision.value() else {
                    try await drain()
                    return
                }
                do {
                    while let chunk = try await iterator.next() {
                        written += chunk.readableBytes
                        guard written <= limit else { throw OutputLimitExceeded(limit: limit) }
                        try await writer.write(chunk)
                    }
                    done.fulfill(timedOut.load(ordering: .relaxed) ? .failure(TimedOut()) : .success(()))
                } catch {
                    if error is OutputLimitExceeded { errors.write("\(scriptName): \(error)") }
                    done.fulfill(.failure(error))
                    process.signalGroup(SIGTERM)
                    try await drain()
                }
            }
        } catch {
            head.fulfill(.failed(.badGateway, reason: "reading the script's output failed: \(error)"))
            done.fulfill(.failure(error))
        }
    }

    /// Copies the script's stderr to the error stream, one message per line, named after the script.
    private func forward(_ stderr: NIOAsyncChannel<ByteBuffer, ByteBuffer>, to errors: ErrorStream) async {
        var pending: [UInt8] = []
        try? await stderr.executeThenClose { inbound, _ in
            for try await chunk in inbound {
                pending += chunk.readableBytesView
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    errors.write("\(scriptName): \(String(decoding: pending[..<newline], as: UTF8.self))")
                    pending.removeSubrange(...newline)
                }
                if pending.count > 8192 {
                    errors.write("\(scriptName): \(String(decoding: pending, as: UTF8.self))")
                    pending = []
                }
            }
        }
        if !pending.isEmpty { errors.write("\(scriptName): \(String(decoding: pending, as: UTF8.self))") }
    }

    /// Sleeps for the timeout; if still running, answers 504 (when the head is not out) and
    /// stops the script: SIGTERM, the grace period, SIGKILL, pipes closed.
    private func watchdog(_ configuration: CGIScriptHostConfiguration) async {
        do {
            try await Task.sleep(for: .seconds(configuration.timeoutSeconds))
        } catch {
            return
        }
        timedOut.store(true, ordering: .relaxed)
        head.fulfill(.failed(.gatewayTimeout, reason: "the script ran longer than \(configuration.timeoutSeconds) s"))
        decision.fulfill(.abandon)
        process.signalGroup(SIGTERM)
        try? await Task.sleep(for: .seconds(configuration.killGraceSeconds))
        process.signalGroup(SIGKILL)
        for channel in channels.withLock({ $0 }) { channel.close(promise: nil) }
    }

    /// Ends the script's process group with its request (see the type's comment): waits until
    /// the script has exited or its response is over, gives the other `lingerSeconds`, then
    /// SIGTERM, the grace period, SIGKILL; when both came in time, SIGKILL reaches only what the
    /// script left running in the background (nothing, usually). Stdout is closed if a process
    /// outside the group still holds it. Polls with a growing pause (1 ms up to 50 ms).
    private func endGroup(_ configuration: CGIScriptHostConfiguration) async {
        func both() -> Bool { process.hasExited && stdoutClosed.load(ordering: .acquiring) }
        func waitUntil(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
            let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
            var pause = 1
            while !condition() {
                guard ContinuousClock.now < deadline else { return false }
                try? await Task.sleep(for: .milliseconds(pause))
                pause = min(pause * 2, 50)
            }
            return true
        }
        var pause = 1
        while !(process.hasExited || responseOver.load(ordering: .acquiring)) {
            try? await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, 50)
        }
        if await waitUntil(configuration.lingerSeconds, both) {
            process.signalGroup(SIGKILL)
            return
        }
        process.signalGroup(SIGTERM)
        _ = await waitUntil(configuration.killGraceSeconds, both)
        process.signalGroup(SIGKILL)
        if !(await waitUntil(configuration.killGraceSeconds, { stdoutClosed.load(ordering: .acquiring) })) {
            for channel in channels.withLock({ $0 }) { channel.close(promise: nil) }
        }
    }

    /// Waits for the script to exit, polling waitpid(WNOHANG) with a growing pause (1 ms up to
    /// 50 ms); the watchdog bounds the wait.
    private func reap() async {
        var pause = 1
        while process.tryReap() == nil {
            try? await Task.sleep(for: .milliseconds(pause))
            pause = min(pause * 2, 50)
        }
    }
}
