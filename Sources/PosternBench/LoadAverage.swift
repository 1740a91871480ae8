/// The 1-minute load average, from /proc/loadavg (the machine is shared: every result quotes it).
import Foundation

public enum LoadAverage {
    public static func current() -> Double {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").first.flatMap { Double($0) } ?? 0
    }
}
