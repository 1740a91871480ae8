import NIOCore
import NIOPosix
import PosternCore
import Synchronization

/// One script run: its pipes read by the run itself, head parsing, body streaming, timeout, reaping.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
/// Stdout and stderr are read by the run's tasks (``CGIPipeReader``); ``CGIReactor`` wakes them
/// when a pipe has data and tells the run when the script exits. A timer on an event loop
/// enforces the timeout: SIGTERM to the process group, SIGKILL after the grace period, pipes
/// closed; a head not yet sent becomes 504. A script's process group ends with its
/// request, as Apache ends a CGI child with its request's pool (apr_pool_note_subprocess,
/// APR_KILL_AFTER_TIMEOUT): once the script has exited or its response is over, the other gets
/// ``CGIScriptHostConfiguration/lingerSeconds``, then the group gets SIGTERM and, after the grace
/// period, SIGKILL. So a background child that keeps stdout open does not hold the response, one
/// that closes stdout and runs on does not hold a `--cgi-max-concurrency` slot, and nothing it
/// started outlives it in its group. Every path ends with the child reaped, after its group is
/// signalled (an unreaped script keeps its process id, so the group id is never another's).
final class CGIScriptRun: Sendable {
    enum HeadOutcome: Sendable {
        /// The head and the body bytes read with it; `complete`: the script's output ended there
        /// (a small script that has written everything and closed stdout), so the response is
        /// whole and nothing is streamed.
        case head(CGIResponseHeadParser.Head, body: ByteBuffer, complete: Bool)
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

    /// The most body bytes gathered with the head to send a small script's output whole.
    static let wholeBodyBytes = 64 * 1024
    /// How long a script whose head is in may take to exit for its output to be sent whole.
    static let exitGraceSeconds = 0.002

    let head = OneShot<HeadOutcome>()
    let decision = OneShot<BodyDecision>()
    let done = OneShot<Result<Void, any Error>>()
    let process: CGIChildProcess
    let scriptName: String
    let isNPH: Bool
    private let timedOut = Atomic<Bool>(false)
    /// The response is over: stdout ended, or what is left of it is being drained.
    private let responseOver = OneShot<Void>()
    /// Stdout reached its end (every writer closed it, or it was closed for them).
    private let stdoutClosed = OneShot<Void>()
    /// The script has exited (not yet reaped): from ``CGIReactor``, or polled without a pidfd.
    private let exited = OneShot<Void>()
    /// Stdout and stderr, closed early by the timeout or by ``endGroup(_:on:)``.
    private let readers = Mutex<[CGIPipeReader]>([])

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

    /// What a wait on the request's thread read before the script outlasted it, for the run
    /// that goes on from there.
    struct Leftover: Sendable {
        let stdout: CGIPipeReader
        let stderr: CGIPipeReader
        let stdoutBytes: ByteBuffer
        let stderrBytes: [UInt8]
        /// How long the wait took: the run's timeout counts from the script's start.
        let waited: Duration
    }

    enum WaitHere: Sendable {
        /// The script finished in time: exited, reaped, its stderr forwarded; the outcome is
        /// whole (a head is `complete`).
        case finished(HeadOutcome)
        /// It did not: ``run(body:group:configuration:errors:after:)`` goes on from here.
        case goesOn(Leftover)
    }

    /// Waits up to `milliseconds` on the calling thread for a script without a request body
    /// to write its output (64 KiB at most), close its pipes and exit; then reaps it and
    /// returns what it answered, with no task, no reactor and no other thread involved. Only a
    /// thread that serves this request alone may wait so (an accept thread, see
    /// `postern_set_request_thread`); a script that outlasts the wait, or writes more, goes on
    /// in ``run(body:group:configuration:errors:after:)`` with what was read.
    func waitHere(milliseconds: Int, reactor: CGIReactor, configuration: CGIScriptHostConfiguration, errors: ErrorStream) -> WaitHere {
        let stdout = CGIPipeReader(fd: process.stdoutRead, reactor: reactor)
        let stderr = CGIPipeReader(fd: process.stderrRead, reactor: reactor)
        readers.withLock { $0 = [stdout, stderr] }
        var output = ByteBuffer()
        var messages: [UInt8] = []
        var outputEnded = false
        var messagesEnded = false
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(milliseconds)
        func goesOn() -> WaitHere {
            .goesOn(Leftover(stdout: stdout, stderr: stderr, stdoutBytes: output, stderrBytes: messages, waited: start.duration(to: .now)))
        }
        do {
            while !(outputEnded && messagesEnded) {
                var progressed = false
                if !outputEnded {
                    switch try stdout.readIfReady() {
                    case .bytes(var bytes):
                        output.writeBuffer(&bytes)
                        progressed = true
                    case .end: outputEnded = true
                    case .empty: break
                    }
                }
                if !messagesEnded {
                    switch try stderr.readIfReady() {
                    case .bytes(let bytes):
                        messages += bytes.readableBytesView
                        progressed = true
                    case .end: messagesEnded = true
                    case .empty: break
                    }
                }
                if output.readableBytes > Self.wholeBodyBytes || messages.count > Self.wholeBodyBytes { return goesOn() }
                if progressed || (outputEnded && messagesEnded) { continue }
                // Stdout is over and the script gone, but something it started holds stderr:
                // that is ended with the group below, as a run ends it (endGroup).
                if outputEnded && process.hasExited { break }
                var left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else { return goesOn() }
                // Stdout's end comes a moment before the exit: look again within a millisecond,
                // not at stderr alone, which something it started may hold for good.
                if outputEnded { left = min(left, .milliseconds(1)) }
                var waiting = [
                    pollfd(fd: outputEnded ? -1 : stdout.fd, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: messagesEnded ? -1 : stderr.fd, events: Int16(POLLIN), revents: 0),
                ]
                let milliseconds = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
                if poll(&waiting, 2, milliseconds) < 0 && errno != EINTR { return goesOn() }
            }
        } catch {
            return goesOn()  // the run reads again, and fails the same way
        }
        // Both pipes end as the script exits: it is (all but) a zombie by now, unless it closed
        // them and runs on.
        while !process.hasExited {
            guard ContinuousClock.now < deadline else { return goesOn() }
            usleep(20)
        }
        // Whatever it left running in its group ends with it, as after a run (endGroup).
        process.signalGroup(SIGKILL)
        if !messagesEnded, case .bytes(let bytes) = try? stderr.readIfReady() { messages += bytes.readableBytesView }
        stdout.close()
        stderr.close()
        Self.forward(messages, of: scriptName, to: errors)
        if let status = process.tryReap(), status != 0 {
            errors.write("\(scriptName): \(CGIChildProcess.describe(status: status))")
        }
        let limit = configuration.maxOutputBytes > 0 ? configuration.maxOutputBytes : Int.max
        guard output.readableBytes <= limit else {
            return .finished(.failed(.badGateway, reason: OutputLimitExceeded(limit: limit).description))
        }
        var parser = CGIResponseHeadParser(mode: isNPH ? .httpStatusLine : .cgi, maxHeadBytes: configuration.maxHeadBytes)
        do {
            if case .head(let head, let body) = try parser.feed(output) {
                return .finished(.head(head, body: body, complete: true))
            }
            try parser.finish()
        } catch {
            return .finished(.failed(.badGateway, reason: "no valid CGI header block: \(error)"))
        }
        return .finished(.failed(.badGateway, reason: "the script ended without a response"))
    }

    /// Runs the script to the end, `after` a wait on the request's thread if there was one.
    /// Never throws; always reaps.
    func run(body: RequestBody, group: any EventLoopGroup, configuration: CGIScriptHostConfiguration, errors: ErrorStream, after leftover: Leftover? = nil)
        async
    {
        guard let reactor = CGIReactor.shared else {
            if let fd = process.stdinWrite { close(fd) }
            close(process.stdoutRead)
            close(process.stderrRead)
            fail("cannot watch the script's output (no descriptor or thread for the CGI reactor)")
            return
        }
        let stdout = leftover?.stdout ?? CGIPipeReader(fd: process.stdoutRead, reactor: reactor)
        let stderr = leftover?.stderr ?? CGIPipeReader(fd: process.stderrRead, reactor: reactor)
        readers.withLock { $0 = [stdout, stderr] }
        if let fd = process.stdinWrite {
            do {
                let stdin = try await NIOPipeBootstrap(group: group).takingOwnershipOfDescriptor(output: fd).get()
                Task { await Self.pump(body, into: stdin) }
            } catch {
                close(fd)
            }
        }

        let loop = group.next()
        watchExit(reactor)
        let timeout = Duration.nanoseconds(Int64(configuration.timeoutSeconds * 1e9)) - (leftover?.waited ?? .zero)
        let watchdog = loop.scheduleTask(in: .nanoseconds(max(0, timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)))
        {
            Task { await self.timeOut(configuration) }
        }
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await self.forward(stderr, after: leftover?.stderrBytes ?? [], to: errors) }
            tasks.addTask {
                await self.readStdout(stdout, after: leftover?.stdoutBytes, configuration: configuration, errors: errors, loop: loop)
                self.responseOver.fulfill(())
                self.stdoutClosed.fulfill(())
            }
            await endGroup(configuration, on: loop)
            await tasks.waitForAll()
        }
        watchdog.cancel()
        // endGroup ended with SIGKILL to the group: the script is gone or going.
        await exited.value()
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
    /// - Parameter first: what a wait on the request's thread read already.
    private func readStdout(
        _ stdout: CGIPipeReader, after first: ByteBuffer?, configuration: CGIScriptHostConfiguration, errors: ErrorStream, loop: any EventLoop
    )
        async
    {
        var parser = CGIResponseHeadParser(mode: isNPH ? .httpStatusLine : .cgi, maxHeadBytes: configuration.maxHeadBytes)
        let limit = configuration.maxOutputBytes > 0 ? configuration.maxOutputBytes : Int.max
        var written = 0
        defer { stdout.close() }
        do {
            /// Stops the script and drains what it still writes: the response is over.
            func drain() async throws {
                responseOver.fulfill(())
                while try await stdout.read() != nil {}
            }
            var delivered = false
            var pending: ByteBuffer?
            var first = first.flatMap { $0.readableBytes > 0 ? $0 : nil }
            do {
                while !delivered {
                    let next: ByteBuffer?
                    if let bytes = first {
                        next = bytes
                        first = nil
                    } else {
                        next = try await stdout.read()
                    }
                    guard let chunk = next else {
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
                    if case .head(let parsed, var body) = try parser.feed(chunk) {
                        // Whatever else is there already, without waiting (up to a small
                        // body): if the output has ended, the response goes out whole (one
                        // write, no stream). Bytes past --cgi-max-output wait for the stream,
                        // which cuts the response off after its head, as for any later chunk.
                        func gather() throws -> Bool {
                            while body.readableBytes < Self.wholeBodyBytes {
                                switch try stdout.readIfReady() {
                                case .bytes(var more):
                                    guard written + more.readableBytes <= limit else {
                                        pending = more
                                        return false
                                    }
                                    written += more.readableBytes
                                    body.writeBuffer(&more)
                                case .end:
                                    return true
                                case .empty:
                                    return false
                                }
                            }
                            return false
                        }
                        var complete = try gather()
                        // The head often comes a moment before the script exits (and so before
                        // stdout ends): a script that exits within the grace is still answered
                        // whole. Its exit closes its stdout, unless something it started holds
                        // it; a script that goes on writing is streamed after the grace.
                        if !complete, pending == nil, body.readableBytes < Self.wholeBodyBytes,
                            await OneShot.wait(for: [exited], all: true, seconds: Self.exitGraceSeconds, on: loop)
                        {
                            complete = try gather()
                        }
                        delivered = head.fulfill(.head(parsed, body: body, complete: complete))
                        if !delivered { break }
                        if complete {
                            done.fulfill(timedOut.load(ordering: .relaxed) ? .failure(TimedOut()) : .success(()))
                            return
                        }
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
                if let chunk = pending {
                    written += chunk.readableBytes
                    guard written <= limit else { throw OutputLimitExceeded(limit: limit) }
                    try await writer.write(chunk)
                }
                while let chunk = try await stdout.read() {
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
        } catch {
            head.fulfill(.failed(.badGateway, reason: "reading the script's output failed: \(error)"))
            done.fulfill(.failure(error))
        }
    }

    /// Copies the script's stderr to the error stream, one message per line, named after the
    /// script; `first`: what a wait on the request's thread read already.
    private func forward(_ stderr: CGIPipeReader, after first: [UInt8], to errors: ErrorStream) async {
        defer { stderr.close() }
        var pending = first
        Self.writeLines(&pending, of: scriptName, to: errors)
        while let chunk = try? await stderr.read() {
            pending += chunk.readableBytesView
            Self.writeLines(&pending, of: scriptName, to: errors)
        }
        Self.forward(pending, of: scriptName, to: errors)
    }

    /// Writes the complete lines of `pending` (and a line longer than 8 KiB) as messages named
    /// after the script, and leaves the rest in it.
    private static func writeLines(_ pending: inout [UInt8], of scriptName: String, to errors: ErrorStream) {
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            errors.write("\(scriptName): \(String(decoding: pending[..<newline], as: UTF8.self))")
            pending.removeSubrange(...newline)
        }
        if pending.count > 8192 {
            errors.write("\(scriptName): \(String(decoding: pending, as: UTF8.self))")
            pending = []
        }
    }

    /// The whole of what is left of a script's stderr (it has ended), as messages.
    private static func forward(_ bytes: [UInt8], of scriptName: String, to errors: ErrorStream) {
        var pending = bytes
        writeLines(&pending, of: scriptName, to: errors)
        if !pending.isEmpty { errors.write("\(scriptName): \(String(decoding: pending, as: UTF8.self))") }
    }

    /// Learns of the script's exit from the reactor, or, where the kernel has no pidfd, by
    /// polling waitid(WNOWAIT) with a growing pause (1 ms up to 50 ms).
    private func watchExit(_ reactor: CGIReactor) {
        let exited = self.exited
        if reactor.watchExit(of: process.pid, { exited.fulfill(()) }) { return }
        let process = self.process
        Task {
            var pause = 1
            while !process.hasExited {
                try? await Task.sleep(for: .milliseconds(pause))
                pause = min(pause * 2, 50)
            }
            exited.fulfill(())
        }
    }

    /// The timeout passed with the script still running (its timer is cancelled when the run
    /// ends): answers 504 when the head is not out, and stops the script: SIGTERM, the grace
    /// period, SIGKILL, pipes closed.
    private func timeOut(_ configuration: CGIScriptHostConfiguration) async {
        timedOut.store(true, ordering: .relaxed)
        head.fulfill(.failed(.gatewayTimeout, reason: "the script ran longer than \(configuration.timeoutSeconds) s"))
        decision.fulfill(.abandon)
        process.signalGroup(SIGTERM)
        try? await Task.sleep(for: .seconds(configuration.killGraceSeconds))
        process.signalGroup(SIGKILL)
        for reader in readers.withLock({ $0 }) { reader.close() }
    }

    /// Ends the script's process group with its request (see the type's comment): waits until
    /// the script has exited or its response is over, gives the other `lingerSeconds`, then
    /// SIGTERM, the grace period, SIGKILL; when both came in time, SIGKILL reaches only what the
    /// script left running in the background (nothing, usually). Stdout is closed if a process
    /// outside the group still holds it. Every wait is for events (the exit, stdout's end), with
    /// a timer on `loop` for the limits: nothing polls.
    private func endGroup(_ configuration: CGIScriptHostConfiguration, on loop: any EventLoop) async {
        let both = [exited, stdoutClosed]
        _ = await OneShot.wait(for: [exited, responseOver], all: false, seconds: nil, on: loop)
        if await OneShot.wait(for: both, all: true, seconds: configuration.lingerSeconds, on: loop) {
            process.signalGroup(SIGKILL)
            return
        }
        process.signalGroup(SIGTERM)
        _ = await OneShot.wait(for: both, all: true, seconds: configuration.killGraceSeconds, on: loop)
        process.signalGroup(SIGKILL)
        if !(await OneShot.wait(for: [stdoutClosed], all: true, seconds: configuration.killGraceSeconds, on: loop)) {
            for reader in readers.withLock({ $0 }) { reader.close() }
        }
    }
}
