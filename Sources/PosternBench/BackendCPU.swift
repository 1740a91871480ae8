/// The CPU time (user + system) a backend has used, from /proc, to give CPU per request.
import Foundation

public enum BackendCPU {
    /// utime + stime of `pid` and its live descendants, in seconds (proc(5), `/proc/PID/stat`
    /// fields 14 and 15, in clock ticks). `nil` when /proc has nothing for it.
    public static func seconds(inTreeOf pid: Int32) -> Double? {
        var ticks: Int?
        for member in PeakRSS.tree(of: pid) {
            if let used = self.ticks(member) { ticks = (ticks ?? 0) + used }
        }
        return ticks.map { Double($0) / Double(sysconf(Int32(_SC_CLK_TCK))) }
    }

    static func ticks(_ pid: Int32) -> Int? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm) ": state is field 3, so utime (14) and stime (15) are the 12th and
        // 13th words here.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }
}
