#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A process's resident set, from the second field of `/proc/PID/statm` (in pages; proc(5)):
/// what `--max-worker-rss` bounds and the status page shows.
package enum ResidentMemory {
    /// This process's resident set in bytes; 0 if unknown.
    package static func ofThisProcess() -> Int {
        bytes(at: "/proc/self/statm") ?? 0
    }

    /// Another process's resident set (a master's view of its workers); nil if it is gone.
    package static func of(_ pid: Int32) -> Int? {
        bytes(at: "/proc/\(pid)/statm")
    }

    private static func bytes(at path: String) -> Int? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let fields = String(cString: line).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
