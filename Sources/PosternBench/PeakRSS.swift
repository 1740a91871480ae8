/// The peak resident set size (VmHWM) of a process and of each of its descendants, from /proc.
import Foundation

public enum PeakRSS {
    /// The largest VmHWM in bytes among `pid` and its descendants (a master and its workers):
    /// the peak of one worker. `nil` when /proc has nothing for it.
    public static func largest(inTreeOf pid: Int32) -> Int? {
        var result: Int?
        for member in tree(of: pid) {
            if let peak = vmHWM(member) { result = max(result ?? 0, peak) }
        }
        return result
    }

    static func vmHWM(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let number = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first
            return number.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }

    /// `pid` and every process below it, from each thread's `children` file.
    static func tree(of pid: Int32) -> [Int32] {
        var result: [Int32] = [pid]
        var index = 0
        while index < result.count {
            let current = result[index]
            index += 1
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(current)/task")) ?? []
            for task in tasks {
                let children = (try? String(contentsOfFile: "/proc/\(current)/task/\(task)/children", encoding: .utf8)) ?? ""
                result += children.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        return result
    }
}
