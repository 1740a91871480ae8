import PosternRuntime

/// Why a child process (a worker, a binary checked before an upgrade) could not be started.
public enum ProcessStartError: Error, Sendable, Equatable, CustomStringConvertible {
    /// posix_spawn(3) failed: the executable and its error.
    case cannotSpawn(executable: String, errno: Int32)
    /// The pipe for the child's standard error could not be made.
    case cannotMakePipe(errno: Int32)

    public var description: String {
        switch self {
        case .cannotSpawn(let executable, let errno): "cannot start \(executable): \(systemErrorText(errno))"
        case .cannotMakePipe(let errno): "cannot make a pipe for a child's output: \(systemErrorText(errno))"
        }
    }
}
