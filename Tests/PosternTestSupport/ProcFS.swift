import Foundation

/// What /proc says about a process's sockets: which listening socket a port is, and which
/// sockets a process holds (a child that inherited one it should not have).
public enum ProcFS {
    /// The inode of the TCP socket listening on `port` (`/proc/net/tcp`: state 0A).
    public static func listeningInode(port: Int) -> String? {
        let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
        let hexPort = String(format: "%04X", port)
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            if fields.count > 9, fields[1].hasSuffix(":" + hexPort), fields[3] == "0A" { return String(fields[9]) }
        }
        return nil
    }

    /// The socket inodes that `pid` holds (`/proc/PID/fd`).
    public static func socketInodes(of pid: Int) -> Set<String> {
        let directory = "/proc/\(pid)/fd"
        let links = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return Set(
            links.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0) }
                .filter { $0.hasPrefix("socket:[") }.map { String($0.dropFirst(8).dropLast()) })
    }

    /// What descriptor `fd` of `pid` is (`socket:[INODE]`, a path), if it is open.
    public static func descriptor(_ fd: Int32, of pid: Int) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
    }
}
