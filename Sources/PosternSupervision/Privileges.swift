import FoundationEssentials
import Logging
import NIOCore
import PosternCore
import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// Who the server runs as, and the files that say so: `--user`/`--group` (privileges dropped
/// once the listeners are bound, before anything is served), `--socket-owner`/`--socket-group`
/// for unix socket files, `--chdir`, `--umask` and `--pid-file`.
///
/// As root without `--user`, it refuses to serve unless `--allow-root` (or the development
/// default on loopback): a FastCGI socket runs code as whoever serves it.
package enum Privileges {
    /// A user (or group) named, or given by number.
    package struct Account: Sendable, Equatable {
        package let name: String
        package let id: UInt32
        package let primaryGroup: gid_t
    }

    package static func user(_ text: String) throws -> Account {
        if let entry = getpwnam(text) {
            return Account(name: text, id: entry.pointee.pw_uid, primaryGroup: entry.pointee.pw_gid)
        }
        if let number = UInt32(text), let entry = getpwuid(number) {
            return Account(name: String(cString: entry.pointee.pw_name), id: number, primaryGroup: entry.pointee.pw_gid)
        }
        throw AccountError.noSuchUser(text)
    }

    package static func group(_ text: String) throws -> gid_t {
        if let entry = getgrnam(text) { return entry.pointee.gr_gid }
        if let number = UInt32(text), getgrgid(number) != nil { return number }
        throw AccountError.noSuchGroup(text)
    }

    /// Before anything is bound: `--umask`, then `--chdir`.
    package static func prepare(_ identity: ProcessIdentity) throws {
        if let text = identity.umask {
            guard let mask = UInt32(text, radix: 8), mask <= 0o777 else { throw PathError.notAnOctalMask(text) }
            umask(mode_t(mask))
        }
        if let directory = identity.chdir {
            guard chdir(directory) == 0 else { throw PathError.cannotChangeDirectory(directory, errno: errno) }
        }
    }

    /// Refuses root without `--user`, unless `--allow-root`, or every listener is TCP on loopback
    /// (a developer's machine; said in the log): a unix socket, an inherited descriptor or a
    /// public address is how a front-end or the world reaches code running as root.
    package static func checkRoot(_ identity: ProcessIdentity, listeners: [ListenerSpec], logger: Logger) throws {
        guard geteuid() == 0, identity.user == nil, !identity.allowRoot else { return }
        guard !refusesRoot(identity, listeners: listeners) else { throw AccountError.rootWithoutUser }
        logger.warning("running as root (on loopback only); give --user NAME for anything else")
    }

    /// Whether ``checkRoot(_:listeners:logger:)`` refuses to serve `listeners` (`--check-config`
    /// asks before anything is bound).
    package static func refusesRoot(_ identity: ProcessIdentity, listeners: [ListenerSpec]) -> Bool {
        geteuid() == 0 && identity.user == nil && !identity.allowRoot && !(!listeners.isEmpty && listeners.allSatisfy { isLoopback($0) })
    }

    /// Whether a listener is TCP on a loopback address: one given as `HOST:PORT`, or an inherited
    /// socket (fd 0 from spawn-fcgi or `cgi-fcgi -start`, systemd's, `fd:N`) whose own address
    /// (`getsockname`, through `localAddress`) is one; a unix socket is not.
    package static func isLoopback(_ spec: ListenerSpec, localAddress: (Int32) -> SocketAddress? = { SocketAddress.local(of: $0) }) -> Bool {
        switch spec.address {
        case .tcp(let host, _):
            return host == "localhost" || host == "::1" || host.hasPrefix("127.")
        case .fd(let fd):
            guard let address = localAddress(fd), let ip = address.ipAddress else { return false }
            return ip == "::1" || ip.hasPrefix("127.") || ip.hasPrefix("::ffff:127.")
        case .unix:
            return false
        }
    }

    /// Gives `path` (a directory the master made) to `--user`, for its workers to write in.
    package static func giveToUser(_ path: String, _ identity: ProcessIdentity) throws {
        guard let text = identity.user, geteuid() == 0 else { return }
        let account = try user(text)
        let groupID = try identity.group.map(group) ?? account.primaryGroup
        guard chown(path, account.id, groupID) == 0 else { throw AccountError.cannotGive(user: text, path: path, errno: errno) }
    }

    /// `--socket-owner` and `--socket-group` for a unix socket file just bound.
    package static func ownSocket(_ path: String, _ identity: ProcessIdentity) throws {
        guard identity.socketOwner != nil || identity.socketGroup != nil else { return }
        let owner = try identity.socketOwner.map { try user($0).id } ?? UInt32.max  // -1: unchanged
        let group = try identity.socketGroup.map { try self.group($0) } ?? UInt32.max
        guard chown(path, owner, group) == 0 else {
            throw AccountError.cannotOwnSocket(path: path, errno: errno)
        }
    }

    /// Drops to `--user` (its primary group unless `--group`, its supplementary groups from the
    /// group database), for good: the real, effective and saved ids all change, and a check that
    /// root cannot be regained. Nothing when not root or no `--user`.
    package static func dropPrivileges(_ identity: ProcessIdentity) throws {
        guard let userText = identity.user else { return }
        let account = try user(userText)
        let groupID = try identity.group.map(group) ?? account.primaryGroup
        guard geteuid() == 0 else {
            guard geteuid() == account.id else { throw AccountError.onlyRootChangesUser(userText) }
            return
        }
        guard initgroups(account.name, groupID) == 0 else { throw AccountError.cannotSwitch(option: "--user \(userText)", call: "initgroups", errno: errno) }
        guard setgid(groupID) == 0 else { throw AccountError.cannotSwitch(option: "--group", call: "setgid(\(groupID))", errno: errno) }
        guard setuid(account.id) == 0 else { throw AccountError.cannotSwitch(option: "--user \(userText)", call: "setuid(\(account.id))", errno: errno) }
        if account.id != 0 {
            guard setuid(0) != 0, geteuid() == account.id, getegid() == groupID else {
                throw AccountError.rootRegainable(userText)
            }
        }
    }

    package static let inheritedKey = "POSTERN_LISTENERS_INHERITED"
    package static let socketFilesKey = "POSTERN_SOCKET_FILES"

    /// Drops to `--user` and executes the binary again, the bound sockets inherited: setuid(2)
    /// changes every live thread, but a Swift program's main thread has already ended (the
    /// async `main` parks it for good), and the process's entry in /proc (what `ps` shows, what
    /// `/proc/PID` belongs to) keeps that thread's ids. A process started afresh as the user has
    /// none left over. The listeners pass as `POSTERN_LISTENERS_INHERITED` (`fastcgi=9,http=10`);
    /// the process id stays the same (a pid file, a supervisor, systemd's MAINPID stay true).
    /// A worker passes `keepEnvironment` (its sockets are already in its environment).
    package static func dropPrivilegesAndReexecute(_ identity: ProcessIdentity, listeners: [ListenerSpec], socketFiles: [String], keepEnvironment: Bool = false)
        throws
        -> Never
    {
        try dropPrivileges(identity)
        if !keepEnvironment {
            var inherited: [InheritedListeners.Listener] = []
            for spec in listeners {
                guard case .fd(let fd) = spec.address else { continue }
                _ = fcntl(fd, F_SETFD, 0)  // kept across exec
                inherited.append((spec.listenerProtocol, fd))
            }
            setenv(inheritedKey, InheritedListeners.encode(inherited), 1)
            setenv(socketFilesKey, socketFiles.joined(separator: ":"), 1)
        }
        let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", arguments)
        throw AccountError.cannotExecuteAgain(user: identity.user ?? "?", errno: errno)
    }

    /// The listeners a process executed again as `--user` inherited; nil when it is no such process.
    package static func inheritedListeners(_ environment: [String: String], allow: AllowList) -> [ListenerSpec]? {
        guard let text = environment[inheritedKey] else { return nil }
        unsetenv(inheritedKey)
        return (InheritedListeners.decode(text) ?? []).map { ListenerSpec($0.listenerProtocol, .fd($0.fd), allow: allow) }
    }

    /// The unix socket files such a process removes at exit.
    package static func inheritedSocketFiles(_ environment: [String: String]) -> [String] {
        guard let text = environment[socketFilesKey] else { return [] }
        unsetenv(socketFilesKey)
        return text.split(separator: ":").map(String.init)
    }

    /// `--pid-file`: written whole (a temporary file renamed over the path) with this process's
    /// id; `remove` deletes it if it still names this process.
    package static func writePIDFile(_ path: String) throws {
        let temporary = path + ".\(getpid()).tmp"
        let line = Array("\(getpid())\n".utf8)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let written = fd >= 0 && line.withUnsafeBytes { FileDescriptorIO.writeAll(fd, $0) }
        let failure = errno
        if fd >= 0 { close(fd) }
        guard written else {
            unlink(temporary)
            throw PathError.cannotWrite(option: "--pid-file", path: path, errno: failure)
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw PathError.cannotWrite(option: "--pid-file", path: path, errno: errno)
        }
    }

    package static func removePIDFile(_ path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            Int32(text.split(whereSeparator: \.isWhitespace).first ?? "") == getpid()
        else { return }
        unlink(path)
    }
}
