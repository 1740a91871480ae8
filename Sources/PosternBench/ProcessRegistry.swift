/// Every process `postern bench` started, so that an error or SIGINT stops them all.
import Dispatch
import Foundation
import PosternFrontEnds

/// The started processes, stopped in reverse order by ``stopAll()``; SIGINT and SIGTERM do the same and exit.
public final class ProcessRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var processes: [ManagedProcess] = []
    private var signalSources: [DispatchSourceSignal] = []

    public init() {}

    public func add(_ process: ManagedProcess) {
        lock.withLock { processes.append(process) }
    }

    public func stopAll() {
        let all = lock.withLock { () -> [ManagedProcess] in
            defer { processes.removeAll() }
            return processes
        }
        for process in all.reversed() {
            // Preforking servers (fcgiwrap -c N) leave their children running when the parent
            // gets SIGTERM: find the whole tree first, then stop the stragglers too.
            let descendants = PeakRSS.tree(of: process.pid).dropFirst()
            process.stop()
            for pid in descendants where kill(pid, 0) == 0 {
                kill(pid, SIGTERM)
            }
        }
    }

    /// On SIGINT or SIGTERM: stop everything, then exit 130 (or 143).
    public func stopOnSignals() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [self] in
                FileHandle.standardError.write(Data("\npostern bench: signal \(signalNumber), stopping everything it started\n".utf8))
                stopAll()
                exit(128 + signalNumber)
            }
            source.resume()
            lock.withLock { signalSources.append(source) }
        }
    }
}
