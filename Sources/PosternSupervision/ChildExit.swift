#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended: waitpid(2)'s status, decoded (`WIFEXITED`/`WEXITSTATUS`,
/// `WIFSIGNALED`/`WTERMSIG`).
package enum ChildExit: Equatable, Sendable, CustomStringConvertible {
    case code(Int32)
    case signal(Int32)

    package init(waitStatus status: Int32) {
        self = (status & 0x7f) == 0 ? .code((status >> 8) & 0xff) : .signal(status & 0x7f)
    }

    package var description: String {
        switch self {
        case .code(let code): "exit \(code)"
        case .signal(let number): "signal \(number)"
        }
    }

    /// `EX_USAGE` (64, a bad option) and `EX_CONFIG` (78), from sysexits.h: starting the same
    /// child again cannot help.
    package var isConfigurationError: Bool { self == .code(64) || self == .code(78) }
}
