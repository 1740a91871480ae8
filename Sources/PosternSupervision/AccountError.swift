import PosternRuntime

/// Why the server cannot run as the user and group it is told to (`--user`, `--group`,
/// `--socket-owner`, `--socket-group`, root without `--user`).
public enum AccountError: Error, Sendable, Equatable, CustomStringConvertible {
    case noSuchUser(String)
    case noSuchGroup(String)
    /// Running as root with no `--user` and no `--allow-root`, on listeners beyond loopback.
    case rootWithoutUser
    /// Not root, and `--user` names another user.
    case onlyRootChangesUser(String)
    /// initgroups(3), setgid(2) or setuid(2) failed: the option, the call and errno.
    case cannotSwitch(option: String, call: String, errno: Int32)
    /// After the switch, root could still be regained: the server refuses to serve.
    case rootRegainable(String)
    /// The binary could not be executed again as the user (execv(3) failed).
    case cannotExecuteAgain(user: String, errno: Int32)
    /// A path the master made could not be given to the user.
    case cannotGive(user: String, path: String, errno: Int32)
    /// `--socket-owner`/`--socket-group` could not be applied to a socket file.
    case cannotOwnSocket(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .noSuchUser(let text): "--user \(text): no such user"
        case .noSuchGroup(let text): "--group \(text): no such group"
        case .rootWithoutUser:
            "running as root: give --user NAME (the listeners are bound as root, then the server runs as NAME) or --allow-root"
        case .onlyRootChangesUser(let user): "--user \(user): only root can change to another user"
        case .cannotSwitch(let option, let call, let errno): "\(option): \(call): \(systemErrorText(errno))"
        case .rootRegainable(let user): "--user \(user): root could be regained after dropping privileges; refusing to serve"
        case .cannotExecuteAgain(let user, let errno): "--user: cannot execute the binary again as \(user): \(systemErrorText(errno))"
        case .cannotGive(let user, let path, let errno): "--user \(user): cannot give \(path) to it: \(systemErrorText(errno))"
        case .cannotOwnSocket(let path, let errno): "--socket-owner/--socket-group for \(path): \(systemErrorText(errno))"
        }
    }
}
