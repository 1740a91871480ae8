/// Who a process runs as and how it sets itself up before it serves, as the options name them:
/// `--user`, `--group`, `--allow-root`, `--socket-owner`, `--socket-group`, `--umask` and
/// `--chdir` (``Privileges`` applies them). A serving process takes it from its options; a
/// manager of several apps has one for itself and one per app.
package struct ProcessIdentity: Sendable, Equatable {
    package var user: String?
    package var group: String?
    package var allowRoot = false
    package var socketOwner: String?
    package var socketGroup: String?
    /// Octal, as given (`027`).
    package var umask: String?
    package var chdir: String?

    package init(
        user: String? = nil, group: String? = nil, allowRoot: Bool = false, socketOwner: String? = nil, socketGroup: String? = nil, umask: String? = nil,
        chdir: String? = nil
    ) {
        self.user = user
        self.group = group
        self.allowRoot = allowRoot
        self.socketOwner = socketOwner
        self.socketGroup = socketGroup
        self.umask = umask
        self.chdir = chdir
    }
}
