// The CGI host's wait on the request's own thread: a script without a body, on a one-request
// connection, is waited for by the accept thread that took it; what it answers, logs and leaves
// behind must be what the run in tasks gives, whether it finishes within the wait or outlasts it.
import Foundation
import NIOCore
import PosternCore
import PosternRuntime
import PosternTestSupport
import Testing

@testable import PosternCGIHost

@Suite("CGI host: the wait on the request's thread", .serialized)
struct WaitHereTests {
    /// A root with the scripts below; each that starts a process writes its id to $PIDDIR.
    static func makeRoot() throws -> (root: String, pids: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("postern-wait-here-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        let root = base + "/root"
        let pids = base + "/pids"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: pids, withIntermediateDirectories: true)
        let scripts = [
            "quick.sh": "printf 'Content-Type: text/plain\\r\\n\\r\\nquick\\n'\necho quick-warning >&2\nexit 3\n",
            "no-head.sh": "echo no header here\n",
            "silent.sh": "exit 0\n",
            "redirect.sh": "printf 'Location: /quick.sh\\r\\n\\r\\n'\n",
            // More than the 64 KiB a wait gathers: the rest streams.
            "big.sh": "printf 'Content-Type: text/plain\\r\\n\\r\\n'\nhead -c 100000 /dev/zero | tr '\\0' a\n",
            // Exits at once, leaving a process in its group that holds none of its pipes.
            "background.sh": """
            sleep 300 >/dev/null 2>&1 </dev/null & echo $! > "$PIDDIR/background"
            printf 'Content-Type: text/plain\\r\\n\\r\\nleft one behind\\n'

            """,
            // Ends its stdout, exits a moment later; what it leaves in its group holds its
            // stderr, not its stdout.
            "holds-stderr.sh": """
            sleep 300 >/dev/null </dev/null & echo $! > "$PIDDIR/holds-stderr"
            printf 'Content-Type: text/plain\\r\\n\\r\\nstderr held\\n'
            exec >&-
            sleep 0.1

            """,
            // Answers in two parts, a second apart, with a message before and after the pause.
            "slow.sh": """
            printf 'Content-Type: text/plain\\r\\n\\r\\nfirst\\n'
            echo early-warning >&2
            sleep 1
            echo second
            echo late-warning >&2

            """,
        ]
        for (name, body) in scripts {
            try ("#!/bin/sh\n" + body).write(toFile: root + "/" + name, atomically: true, encoding: .utf8)
            chmod(root + "/" + name, 0o755)
        }
        return (root, pids)
    }

    /// A host over SCGI (the accept threads' fast path) on a new root, waiting `milliseconds`.
    static func withHost(
        milliseconds: Int, maxOutput: Int = 0, log: ErrorLog, _ body: (_ get: (String) async throws -> String, _ pids: String) async throws -> Void
    ) async throws {
        let (root, pids) = try makeRoot()
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        try await LiveServer.withHost(
            root: root, gatewayEnvironment: ["PIDDIR": pids], log: log, listenerProtocol: .scgi,
            {
                $0.waitHereMilliseconds = milliseconds
                $0.maxOutputBytes = maxOutput
                $0.passEnvironment = ["PIDDIR"]
            }
        ) { server in
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.port)
            try await body({ path in String(buffer: try await RawClient.exchange(RequestBytes.request(.scgi, path: path), with: address)) }, pids)
        }
    }

    @Test("scripts that finish within the wait: their answers, stderr lines, exit status, redirects and errors as a run gives them")
    func finishedWithinTheWait() async throws {
        let log = ErrorLog()
        try await Self.withHost(milliseconds: 5000, log: log) { get, pids in
            let quick = try await get("/quick.sh")
            #expect(quick.hasPrefix("Status: 200") && quick.hasSuffix("\r\n\r\nquick\n"), "\(quick)")
            #expect(await log.eventuallyContains { $0.trimmingCharacters(in: .newlines) == "/quick.sh: quick-warning" }, "\(log.all)")
            #expect(await log.eventuallyContains { $0.trimmingCharacters(in: .newlines) == "/quick.sh: exit 3" }, "\(log.all)")

            let redirected = try await get("/redirect.sh")
            #expect(redirected.hasSuffix("\r\n\r\nquick\n"), "an internal redirect runs the target: \(redirected)")

            let noHead = try await get("/no-head.sh")
            #expect(noHead.hasPrefix("Status: 502"), "\(noHead)")
            #expect(await log.eventuallyContains { $0.contains("/no-head.sh") && $0.contains("no valid CGI header block") }, "\(log.all)")
            let silent = try await get("/silent.sh")
            #expect(silent.hasPrefix("Status: 502"), "\(silent)")

            let big = try await get("/big.sh")
            #expect(big.hasPrefix("Status: 200"))
            #expect(big.split(separator: "\r\n\r\n", maxSplits: 1).last?.utf8.count == 100_000, "\(big.utf8.count) bytes")

            let background = try await get("/background.sh")
            #expect(background.hasSuffix("left one behind\n"), "\(background)")
            let left = try await MisbehavingScriptTests.pid(pids, "background")
            #expect(
                try await MisbehavingScriptTests.gone(left, group: getpgid(left) > 0 ? getpgid(left) : left),
                "a process the script left in its group runs on (pid \(left))")
            #expect(try await lingeringZombies().isEmpty, "scripts left unreaped")
        }
    }

    @Test("a script whose stdout has ended and which has exited is answered, though a process it left holds stderr; that process is ended")
    func stderrHeld() async throws {
        try await Self.withHost(milliseconds: 5000, log: ErrorLog()) { get, pids in
            let start = ContinuousClock.now
            let answer = try await get("/holds-stderr.sh")
            let took = ContinuousClock.now - start
            #expect(answer.hasSuffix("stderr held\n"), "\(answer)")
            #expect(took < .milliseconds(2500), "answered after \(took): the wait held out for stderr")
            let left = try await MisbehavingScriptTests.pid(pids, "holds-stderr")
            #expect(try await MisbehavingScriptTests.gone(left, group: getpgid(left) > 0 ? getpgid(left) : left), "pid \(left) runs on")
        }
    }

    @Test("--cgi-max-output within the wait: 502, the reason logged")
    func outputLimit() async throws {
        let log = ErrorLog()
        try await Self.withHost(milliseconds: 5000, maxOutput: 10, log: log) { get, _ in
            let answer = try await get("/quick.sh")
            #expect(answer.hasPrefix("Status: 502"), "\(answer)")
            #expect(await log.eventuallyContains { $0.contains("/quick.sh") && $0.contains("--cgi-max-output") }, "\(log.all)")
        }
    }

    @Test("a script that outlasts the wait: what the wait read goes on with the run, nothing lost or repeated")
    func outlastingTheWait() async throws {
        let log = ErrorLog()
        try await Self.withHost(milliseconds: 300, log: log) { get, _ in
            let answer = try await get("/slow.sh")
            #expect(answer.hasPrefix("Status: 200") && answer.hasSuffix("\r\n\r\nfirst\nsecond\n"), "\(answer)")
            #expect(await log.eventuallyContains { $0.trimmingCharacters(in: .newlines) == "/slow.sh: late-warning" }, "\(log.all)")
            #expect(log.all.filter { $0.trimmingCharacters(in: .newlines) == "/slow.sh: early-warning" }.count == 1, "\(log.all)")
            #expect(log.all.filter { $0.trimmingCharacters(in: .newlines) == "/slow.sh: late-warning" }.count == 1, "\(log.all)")
            #expect(try await lingeringZombies().isEmpty, "scripts left unreaped")
        }
    }

    @Test("the policy: waits while most waits finish in time; otherwise goes straight to the run, trying one wait in 16")
    func policy() {
        var policy = WaitHerePolicy()
        var waits = policy.shouldWait()
        #expect(waits, "a new host waits")
        for _ in 0..<8 { policy.record(finishedInTime: false) }
        waits = policy.shouldWait()
        #expect(waits, "8 late of the last 16: still waits")
        policy.record(finishedInTime: false)
        let decisions = (0..<32).map { _ in policy.shouldWait() }
        #expect(decisions.filter { $0 }.count == 2, "9 late of 16: one wait in 16 requests, got \(decisions)")
        #expect(decisions[15] && decisions[31])
        // The probes find the scripts quick again: back to waiting once half the last 16 were.
        for _ in 0..<7 { policy.record(finishedInTime: true) }
        waits = policy.shouldWait()
        #expect(!waits, "7 in time of 16: not yet")
        policy.record(finishedInTime: true)
        waits = policy.shouldWait()
        #expect(waits, "8 in time of 16: waits again")
    }
}
