/// What one wrk run measured, parsed from wrk's `--latency` report.

/// The numbers of one wrk run.
public struct WrkResult: Sendable, Codable, Equatable {
    public var requestsPerSecond: Double
    public var requests: Int
    /// Latency percentiles in milliseconds.
    public var p50: Double
    public var p99: Double
    /// Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses.
    public var errors: Int

    public init(requestsPerSecond: Double, requests: Int, p50: Double, p99: Double, errors: Int) {
        self.requestsPerSecond = requestsPerSecond
        self.requests = requests
        self.p50 = p50
        self.p99 = p99
        self.errors = errors
    }

    /// Parses wrk 4's text output (run with `--latency`); `nil` if the summary lines are missing.
    public static func parse(_ output: String) -> WrkResult? {
        var rps: Double?
        var requests: Int?
        var p50: Double?
        var p99: Double?
        var errors = 0
        for raw in output.split(separator: "\n") {
            let words = raw.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = words.first else { continue }
            if first == "Requests/sec:", words.count >= 2 {
                rps = Double(words[1])
            } else if words.count >= 3, words[1] == "requests", words[2] == "in" {
                requests = Int(first)
            } else if first == "50%", words.count >= 2 {
                p50 = milliseconds(String(words[1]))
            } else if first == "99%", words.count >= 2 {
                p99 = milliseconds(String(words[1]))
            } else if first == "Socket" {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                errors += words.compactMap { Int($0.filter(\.isNumber)) }.reduce(0, +)
            } else if raw.contains("Non-2xx or 3xx responses:"), let last = words.last, let count = Int(last) {
                errors += count
            }
        }
        guard let rps, let requests, let p50, let p99 else { return nil }
        return WrkResult(requestsPerSecond: rps, requests: requests, p50: p50, p99: p99, errors: errors)
    }

    /// `151.00us`, `1.20ms`, `2.00s`, `1.5m` in milliseconds.
    static func milliseconds(_ text: String) -> Double? {
        let units: [(String, Double)] = [("us", 0.001), ("ms", 1), ("s", 1000), ("m", 60_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)) else { return nil }
            return value * scale
        }
        return nil
    }
}
