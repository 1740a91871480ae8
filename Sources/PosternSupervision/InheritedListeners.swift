import PosternRuntime

/// The one format in which a process passes its listening sockets to the process it starts or
/// becomes (a worker, itself executed again as `--user` or for a reload, an upgraded master):
/// one environment variable's value, `http=5,scgi=6`, each protocol's name and the inherited
/// descriptor, in the order of the listener flags.
package enum InheritedListeners {
    package typealias Listener = (listenerProtocol: ListenerProtocol, fd: Int32)

    /// `[(.http, 5), (.scgi, 6)]` as `http=5,scgi=6`.
    package static func encode(_ listeners: [Listener]) -> String {
        listeners.map { "\($0.listenerProtocol.rawValue)=\($0.fd)" }.joined(separator: ",")
    }

    /// The listeners in `text`, or `nil` when an entry is not `PROTOCOL=FD` with a listener's
    /// protocol and a descriptor; empty text is none.
    package static func decode(_ text: String) -> [Listener]? {
        var listeners: [Listener] = []
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, let kind = ListenerProtocol(rawValue: String(parts[0])), let fd = Int32(parts[1]), fd >= 0 else { return nil }
            listeners.append((kind, fd))
        }
        return listeners
    }
}
