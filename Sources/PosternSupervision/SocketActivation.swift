import PosternCore
import PosternRuntime

#if canImport(Glibc)
import Glibc
#endif

/// systemd socket activation (sd_listen_fds(3), "the socket activation protocol"): the sockets
/// a `.socket` unit (or `systemd-socket-activate`) opened, passed from fd 3 up when `LISTEN_PID`
/// is this process, `LISTEN_FDS` of them, named by `LISTEN_FDNAMES` (colon-separated; a unit's
/// `FileDescriptorName=`). The name says the protocol: `fastcgi`, `scgi`, `uwsgi` or `http`.
///
/// The variables are removed once read (as `sd_listen_fds(1)` does), so that nothing this
/// process starts takes the sockets for its own. Under `--workers` the master passes them on to
/// its workers like the sockets it binds itself.
package enum SocketActivation {
    package static let firstDescriptor: Int32 = 3

    /// The passed listeners, or none when this process was not socket-activated.
    package static func listeners(environment: [String: String], socketMode: UInt16, allow: AllowList) throws -> [ListenerSpec] {
        guard let pidText = environment["LISTEN_PID"], let countText = environment["LISTEN_FDS"] else { return [] }
        defer { for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] { unsetenv(name) } }
        guard Int32(pidText) == getpid() else { return [] }  // meant for another process
        guard let count = Int32(countText), count >= 0 else {
            throw SocketActivationError.notACount(countText)
        }
        let names = (environment["LISTEN_FDNAMES"] ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var specs: [ListenerSpec] = []
        for index in 0..<count {
            let fd = firstDescriptor + index
            let name = index < names.count ? names[Int(index)] : "unknown"
            guard let kind = ListenerProtocol(rawValue: name) else {
                throw SocketActivationError.unnamed(fd: fd, name: name)
            }
            guard isListeningSocket(fd) else { throw SocketActivationError.notListening(fd: fd, name: name) }
            specs.append(ListenerSpec(kind, .fd(fd), socketMode: socketMode, allow: allow))
        }
        return specs
    }
}
