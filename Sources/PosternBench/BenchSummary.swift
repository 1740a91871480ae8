/// The per-mode summary of the runs (medians, spread, ratios) and its Markdown table.
import Foundation

/// One row of the results table.
public struct BenchSummary: Sendable, Codable {
    public var mode: BenchMode
    public var medianRequestsPerSecond: Double
    public var minRequestsPerSecond: Double
    public var maxRequestsPerSecond: Double
    public var p50: Double
    public var p99: Double
    public var errors: Int
    public var backendPeakRSS: Int?
    /// The median over the repeats of the backend's CPU time per request, in microseconds.
    public var backendMicrosecondsPerRequest: Double?
    public var ratioToCGI: Double?
    public var ratioToLibfcgi: Double?
    /// How many runs the medians are of: a spread means something only with two or more.
    public var runs: Int = 1

    /// Medians over the repeats of each mode, in the order of `modes`.
    public static func summarize(_ runs: [BenchRun], modes: [BenchMode]) -> [BenchSummary] {
        var rows: [BenchSummary] = modes.compactMap { mode in
            let mine = runs.filter { $0.mode == mode }
            guard !mine.isEmpty else { return nil }
            let rps = mine.map(\.result.requestsPerSecond)
            return BenchSummary(
                mode: mode, medianRequestsPerSecond: median(rps), minRequestsPerSecond: rps.min()!, maxRequestsPerSecond: rps.max()!,
                p50: median(mine.map(\.result.p50)), p99: median(mine.map(\.result.p99)),
                errors: mine.map(\.result.errors).reduce(0, +), backendPeakRSS: mine.compactMap(\.backendPeakRSS).max(),
                backendMicrosecondsPerRequest: mine.compactMap(\.backendMicrosecondsPerRequest).isEmpty
                    ? nil : median(mine.compactMap(\.backendMicrosecondsPerRequest)),
                ratioToCGI: nil, ratioToLibfcgi: nil, runs: mine.count
            )
        }
        let cgi = rows.first { $0.mode == .cgi }?.medianRequestsPerSecond
        let libfcgi = rows.first { $0.mode == .libfcgi }?.medianRequestsPerSecond
        for index in rows.indices {
            if let cgi, cgi > 0 { rows[index].ratioToCGI = rows[index].medianRequestsPerSecond / cgi }
            if let libfcgi, libfcgi > 0 { rows[index].ratioToLibfcgi = rows[index].medianRequestsPerSecond / libfcgi }
        }
        return rows
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The Markdown table: requests/s median with the spread (min–max as ± % of the median).
    public static func markdown(_ rows: [BenchSummary]) -> String {
        var text = "| mode | what | req/s (median) | spread | p50 ms | p99 ms | errors | backend peak RSS | backend CPU µs/req | × cgi | × libfcgi |\n"
        text += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for row in rows {
            let spread =
                row.runs > 1 && row.medianRequestsPerSecond > 0
                ? "±" + format((row.maxRequestsPerSecond - row.minRequestsPerSecond) / 2 / row.medianRequestsPerSecond * 100, 0) + " %" : "–"
            let rss = row.backendPeakRSS.map { format(Double($0) / 1_048_576, 1) + " MiB" } ?? "–"
            text += "| `\(row.mode.rawValue)` | \(row.mode.summary) | \(format(row.medianRequestsPerSecond, 0)) | \(spread) | "
            text += "\(format(row.p50, 2)) | \(format(row.p99, 2)) | \(row.errors) | \(rss) | "
            text += "\(row.backendMicrosecondsPerRequest.map { format($0, 1) } ?? "–") | "
            text += "\(row.ratioToCGI.map { format($0, 2) } ?? "–") | \(row.ratioToLibfcgi.map { format($0, 2) } ?? "–") |\n"
        }
        return text
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }
}
