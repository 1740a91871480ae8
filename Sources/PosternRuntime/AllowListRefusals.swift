import Logging
import NIOCore
import Synchronization

/// Connections refused by `--allow`, logged as a summary: the first at once, then at most one
/// line a second with how many were refused since (a scan or a flood from outside the list
/// would otherwise write a warning per connection).
final class AllowListRefusals: Sendable {
    /// One per process: every listener's refusals are summed.
    static let shared = AllowListRefusals()

    private let warning = ResourceWarning()
    private let unreported = Atomic<Int>(0)

    /// Counts a refused connection from `peer`; logs when a summary is due.
    func refused(peer: String, logger: Logger) {
        unreported.add(1, ordering: .relaxed)
        guard warning.isDue() else { return }
        let refused = unreported.exchange(0, ordering: .relaxed)
        logger.warning("connections refused by the allow-list (--allow)", metadata: ["refused": "\(refused)", "last_peer": "\(peer)"])
    }
}

extension AllowList {
    /// Admission by the allow-list, the same on every path (the fast path's accepted socket, a
    /// channel of the full engine): whether `peer` may connect; a refusal is counted and logged
    /// through ``AllowListRefusals``. The peer's address is made only when there is a list.
    func admits(_ peer: @autoclosure () -> SocketAddress?, logger: Logger) -> Bool {
        guard !isEmpty else { return true }
        let address = peer()
        guard allows(address) else {
            AllowListRefusals.shared.refused(peer: address.map { "\($0)" } ?? "?", logger: logger)
            return false
        }
        return true
    }
}
