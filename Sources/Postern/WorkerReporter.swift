import Foundation
import Synchronization

/// A worker's reports to its master: its counters as a JSON file named after its pid in the
/// master's private run directory, replaced atomically (write, then rename), every 200 ms, once
/// its listeners are up (the master's sign that a reload may retire the old workers) and at exit.
final class WorkerReporter: Sendable {
    let path: String
    let stats: GatewayStats
    /// One write at a time: the periodic and the final write share the temporary file, and an
    /// older snapshot renamed over a newer one would lose the last requests of a leaving worker.
    private let writing = Mutex<Void>(())

    init(directory: String, stats: GatewayStats) {
        self.path = "\(directory)/\(getpid()).json"
        self.stats = stats
    }

    func write() {
        writing.withLock { _ in
            guard let data = try? JSONEncoder().encode(stats.snapshot) else { return }
            let temporary = path + ".tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
            rename(temporary, path)
        }
    }
}
