import CPosternSocket
import FoundationEssentials
import NIOCore
import NIOPosix
import PosternOps
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A worker's reports to its master: its counters as a JSON file named after its pid in the
/// master's private run directory, replaced atomically (write, then rename), every 200 ms, once
/// its listeners are up (the master's sign that a reload may retire the old workers) and at exit.
///
/// The periodic reports come from a thread of their own, not from a task: an application that
/// blocks an event loop (which also runs Swift concurrency's jobs) cannot stop them. Each report
/// carries what `--harakiri` judges by: the oldest request in flight and how long it has run
/// (``SlowRequestLog/oldest()``), and how long the slowest event loop has left a heartbeat
/// unanswered (a job sent to every loop each round).
final class WorkerReporter: Sendable {
    let path: String
    let stats: GatewayStats
    /// One write at a time: the periodic and the final write share the temporary file, and an
    /// older snapshot renamed over a newer one would lose the last requests of a leaving worker.
    private let writing = Mutex<Void>(())
    let heartbeat: EventLoopHeartbeat
    private let stopped = Atomic<Bool>(false)
    /// Set by the first ``write()`` (the server's `onReady`: its listeners are up); the periodic
    /// reports begin then, so the report file never says "ready" before the worker is.
    private let reporting = Atomic<Bool>(false)

    init(directory: String, stats: GatewayStats, loops: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.path = "\(directory)/\(getpid()).json"
        self.stats = stats
        self.heartbeat = EventLoopHeartbeat(loops)
    }

    func write() {
        reporting.store(true, ordering: .relaxed)
        writing.withLock { _ in
            var snapshot = stats.snapshot
            snapshot.reportedAt = Date().timeIntervalSince1970
            if let oldest = stats.slowLog?.oldest() {
                snapshot.oldestRequest = oldest.line
                snapshot.oldestRequestSeconds = oldest.seconds
            }
            snapshot.eventLoopStallSeconds = heartbeat.stallSeconds()
            guard let data = try? JSONEncoder().encode(snapshot) else { return }
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
            rename(temporary, path)
        }
    }

    /// Reports every 200 ms from a thread of its own until ``stop()``, and sends the event
    /// loops a heartbeat every 50 ms (a blocked loop is noticed within a quarter of a second:
    /// ``ConnectionAcceptor`` stops taking connections for it).
    func start() {
        PosixThread.start(name: "postern-report") { [self] in
            var round = 0
            while !stopped.load(ordering: .relaxed) {
                heartbeat.beat()
                usleep(50_000)
                round += 1
                guard !stopped.load(ordering: .relaxed) else { break }
                if round % 4 == 0, reporting.load(ordering: .relaxed) { write() }
            }
        }
    }

    /// The last report, at exit: only from a worker that was ready (a worker that never listened
    /// must not look ready to its master on the way out).
    func writeLast() {
        if reporting.load(ordering: .relaxed) { write() }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
    }
}

/// A job sent to every event loop in turn; a loop that has not run its job yet has been busy
/// (blocked) since the job was sent.
final class EventLoopHeartbeat: Sendable {
    private let loops: [any EventLoop]
    /// Per loop: when its outstanding job was sent (monotonic seconds), or nil when answered.
    private let sent: Mutex<[Double?]>

    init(_ group: any EventLoopGroup) {
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        self.loops = loops
        sent = Mutex([Double?](repeating: nil, count: loops.count))
    }

    /// Sends a job to every loop that has answered the previous one.
    func beat() {
        let now = Self.now()
        for (index, loop) in loops.enumerated() {
            let due = sent.withLock { sent -> Bool in
                guard sent[index] == nil else { return false }
                sent[index] = now
                return true
            }
            if due { loop.execute { [self] in sent.withLock { $0[index] = nil } } }
        }
    }

    /// Whether a loop has left its job waiting longer than `threshold` seconds.
    func isStalled(longerThan threshold: Double) -> Bool {
        stallSeconds() > threshold
    }

    /// How long the slowest loop has left its job waiting (0 when all have answered).
    func stallSeconds() -> Double {
        let now = Self.now()
        return sent.withLock { sent in sent.compactMap { $0.map { now - $0 } }.max() ?? 0 }
    }

    private static func now() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
