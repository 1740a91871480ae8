/// The results of one `postern bench`: the JSON document, the Markdown text and the files written.
import Foundation

public struct BenchReport: Sendable, Codable {
    public struct Skipped: Sendable, Codable {
        public var mode: String
        public var reason: String
    }

    public var frontEnd: String
    public var duration: Double
    public var connections: Int
    public var repeats: Int
    public var cores: Int
    public var loadAverageBefore: Double
    public var loadAverageAfter: Double
    public var date: String
    public var skipped: [Skipped]
    public var summary: [BenchSummary]
    public var runs: [BenchRun]

    /// A run too short or too few to measure anything (`--quick`: 1 × 1 s): it proves that every
    /// mode answers, and its figures are not to be compared.
    public var isSmokeTest: Bool { repeats < 2 || duration < 3 }

    public var title: String {
        (isSmokeTest ? "smoke test, not a measurement — " : "")
            + "postern bench: \(frontEnd), wrk -c\(connections), \(repeats) × \(Int(duration)) s interleaved, \(cores) cores, load \(String(format: "%.2f", loadAverageBefore))→\(String(format: "%.2f", loadAverageAfter))"
    }

    public var markdown: String {
        var text = "\(title) (\(date))\n\n" + BenchSummary.markdown(summary)
        for skip in skipped {
            text += "\nskipped `\(skip.mode)`: \(skip.reason.split(separator: "\n").first ?? "")"
        }
        return text + "\n"
    }

    /// Writes results.md, results.json (every run) and chart.svg into `directory`.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: directory + "/results.json"))
        try markdown.write(toFile: directory + "/results.md", atomically: true, encoding: .utf8)
        try BenchChart.svg(summary, title: title, frontEnd: frontEnd).write(toFile: directory + "/chart.svg", atomically: true, encoding: .utf8)
    }
}
