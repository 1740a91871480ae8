import FoundationEssentials
import NIOSSL
import PosternCore
import PosternRuntime
import PosternSupervision

#if canImport(Glibc)
import Glibc
#endif

extension ServeOptions {
    /// `--check-config`: what a start would find wrong before it binds anything, beyond what
    /// parsing has checked (``validate()``): the listeners' addresses (a host name resolved, as
    /// `nginx -t` does) and allow-list, the status
    /// address, root without `--user`, `--user`, `--group`, `--socket-owner`, `--socket-group`, `--umask`, `--chdir`,
    /// and the directories of the log and pid files. Throws the first problem, naming the option.
    public func check(environment: [String: String]) throws {
        let specs = try listenerSpecs(environment: environment)
        for spec in specs { try ListeningSocket.resolve(spec) }
        if specs.contains(where: \.listenerProtocol.isTLS) { _ = try makeTLSContext(listeners: specs) }
        _ = try socketModeValue()
        if let status { _ = try ListenAddress(parsing: status) }
        // As a start would: root without --user is refused beyond loopback. Judged on addresses
        // only: with no listener given the start decides how it is launched, and a descriptor
        // (`fd:N`, a reload's check) is not this process's to look at; the start checks both.
        if !specs.isEmpty, !specs.contains(where: { if case .fd = $0.address { true } else { false } }),
            Privileges.refusesRoot(identity, listeners: specs)
        {
            throw AccountError.rootWithoutUser
        }
        if let user { _ = try Privileges.user(user) }
        if let group { _ = try Privileges.group(group) }
        if let socketOwner { _ = try Privileges.user(socketOwner) }
        if let socketGroup { _ = try Privileges.group(socketGroup) }
        if let text = umask, UInt32(text, radix: 8).map({ $0 > 0o777 }) ?? true {
            throw PathError.notAnOctalMask(text)
        }
        if let chdir, !Self.isDirectory(chdir) {
            throw PathError.noSuchDirectory(option: "--chdir", path: chdir)
        }
        let base = chdir ?? FileManager.default.currentDirectoryPath
        var files = LogFiles.paths(self)
        if let pidFile { files.append(("--pid-file", pidFile)) }
        for (option, path) in files {
            let absolute = path.hasPrefix("/") ? path : base + "/" + path
            let directory = absolute.lastIndex(of: "/").map { $0 == absolute.startIndex ? "/" : String(absolute[..<$0]) } ?? "."
            guard Self.isDirectory(directory) else {
                throw PathError.directoryMissing(option: option, path: path, directory: directory)
            }
        }
    }

    /// The TLS listeners' context, made from the files as they are now (``TLSSettings``).
    func makeTLSContext(listeners: [ListenerSpec]) throws(TLSError) -> TLSSettings.Loaded {
        guard let settings = tlsSettings else {
            throw .noCertificateGiven(listener: listeners.first { $0.listenerProtocol.isTLS }?.option ?? "a TLS listener")
        }
        return try settings.load()
    }

    private static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
    }
}

extension ServeOptions {
    /// Who the process runs as and how it sets itself up (``Privileges``).
    var identity: ProcessIdentity {
        ProcessIdentity(
            user: user, group: group, allowRoot: allowRoot, socketOwner: socketOwner, socketGroup: socketGroup, umask: umask, chdir: chdir)
    }
}
