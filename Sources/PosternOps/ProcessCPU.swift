#if canImport(Glibc)
import Glibc
#endif

/// A process's CPU time from `/proc/PID/stat` (proc(5): `utime` and `stime`, fields 14 and 15,
/// in clock ticks): what the master reads of each worker for `--workers-max`.
package enum ProcessCPU {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
    package static let ticksPerSecond = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))

    /// User and system time so far, in ticks; nil when the process is gone.
    package static func ticks(of pid: Int32) -> Int? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parse(buffer[..<count])
    }

    /// `utime + stime` from a stat line: the fields after the command's closing parenthesis
    /// (the command may itself hold spaces and parentheses).
    package static func parse(_ line: ArraySlice<UInt8>) -> Int? {
        guard let close = line.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ")": state is field 3, so utime (14) and stime (15) are the 12th and 13th.
        let fields = line[(close + 1)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 12, let user = Int(String(decoding: fields[11], as: UTF8.self)),
            let system = Int(String(decoding: fields[12], as: UTF8.self))
        else { return nil }
        return user + system
    }
}
