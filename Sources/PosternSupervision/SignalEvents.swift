import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Signals as an async sequence, for those swift-service-lifecycle's `UnixSignal` does not name
/// (SIGTTIN, SIGTTOU) and the rest alike: each one's default action (for most, ending or
/// stopping the process) is replaced by a delivery here, from the moment the stream is made.
package enum SignalEvents {
    package static func stream(_ signals: [Int32]) -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        let queue = DispatchQueue(label: "postern.signals")
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        let kept = UncheckedSources(sources)
        continuation.onTermination = { _ in kept.cancel() }
        return stream
    }

    /// The signals a sysadmin or a tool sends in routine work, which no serving process may die
    /// of: reload, log rotation, upgrade, one worker more or less.
    package static let routine: [Int32] = [SIGHUP, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU, SIGWINCH]

    /// Before `execv`: the routine signals ignored. An ignored signal stays ignored in the new
    /// image (execve(2)), so one that arrives while it starts, before it listens for signals
    /// again, is lost instead of ending the process with the default action.
    package static func ignoreRoutineSignalsAcrossExec() {
        for number in routine { signal(number, SIG_IGN) }
    }

    /// The name a sysadmin knows a signal by.
    package static func name(_ number: Int32) -> String {
        switch number {
        case SIGHUP: "SIGHUP"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        case SIGTTIN: "SIGTTIN"
        case SIGTTOU: "SIGTTOU"
        case SIGQUIT: "SIGQUIT"
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGWINCH: "SIGWINCH"
        default: "signal \(number)"
        }
    }

    /// Dispatch sources are thread-safe; cancelled once, when the stream ends.
    private final class UncheckedSources: @unchecked Sendable {
        let sources: [any DispatchSourceSignal]
        init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
        func cancel() { for source in sources { source.cancel() } }
    }
}
