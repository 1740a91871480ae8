/// The one format in which a process passes its listening sockets to the process it starts or
/// becomes (a worker, itself executed again as `--user` or for a reload, an upgraded master):
/// one environment variable's value, `http=5,scgi=6`, each protocol's name and the inherited
/// descriptor, in the order of the listener flags.
package enum InheritedListeners {
    /// `[("http", 5), ("scgi", 6)]` as `http=5,scgi=6`.
    package static func encode(_ listeners: [(String, Int32)]) -> String {
        listeners.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
    }

    /// The listeners in `text`, or `nil` when an entry is not `NAME=FD`; empty text is none.
    package static func decode(_ text: String) -> [(String, Int32)]? {
        var listeners: [(String, Int32)] = []
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let fd = Int32(parts[1]), fd >= 0 else { return nil }
            listeners.append((String(parts[0]), fd))
        }
        return listeners
    }
}
