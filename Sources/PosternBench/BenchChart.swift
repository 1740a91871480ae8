/// An SVG bar chart of requests/s and p99 latency per mode, written without any dependency.
import Foundation

public enum BenchChart {
    /// Two horizontal bar charts side by side: requests/s (the median; with two runs or more, a
    /// whisker from the slowest to the fastest) and p99. The modes measured through the
    /// front-end and those measured without one (wrk straight to the server) are two groups,
    /// each on its own scale: they do not measure the same path.
    public static func svg(_ rows: [BenchSummary], title: String, frontEnd: String = "the front-end") -> String {
        let rowHeight = 22.0
        let groupHeading = 24.0
        let top = 56.0
        let labelWidth = 170.0
        let barWidth = 300.0
        let gap = 40.0
        let groups = [
            ("through \(frontEnd)", rows.filter { !$0.mode.isDirect }),
            ("without a front-end (wrk to the server itself)", rows.filter(\.mode.isDirect)),
        ].filter { !$0.1.isEmpty }
        let showsSpread = rows.contains { $0.runs > 1 }
        let height = top + Double(groups.count) * groupHeading + Double(rows.count) * rowHeight + 30
        let width = labelWidth + 2 * barWidth + gap + 120
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="20" font-size="14" font-weight="bold">\(escape(title))</text>
            <text x="\(labelWidth)" y="44" font-weight="bold">requests/s (median\(showsSpread ? "; whisker: min–max" : ", one run: no spread"))</text>
            <text x="\(labelWidth + barWidth + gap)" y="44" font-weight="bold">p99 latency (ms)</text>

            """
        var y = top
        for (heading, members) in groups {
            svg += "<text x=\"10\" y=\"\(y + 16)\" font-style=\"italic\" fill=\"#333\">\(escape(heading))</text>\n"
            y += groupHeading
            let maxRPS = max(members.map { showsSpread ? $0.maxRequestsPerSecond : $0.medianRequestsPerSecond }.max() ?? 1, 1)
            let maxP99 = max(members.map(\.p99).max() ?? 1, 0.001)
            for row in members {
                let color =
                    row.mode.rawValue.hasPrefix("cgi") || row.mode == .fcgiwrap
                    ? "#c0504d"
                    : (row.mode.summary.contains("reference") || row.mode == .static ? "#8c8c8c" : "#1f77b4")
                let rpsWidth = barWidth * row.medianRequestsPerSecond / maxRPS
                let p99Width = barWidth * row.p99 / maxP99
                let p99X = labelWidth + barWidth + gap
                svg += """
                    <text x="\(labelWidth - 6)" y="\(y + 14)" text-anchor="end">\(escape(row.mode.rawValue))</text>
                    <rect x="\(labelWidth)" y="\(y + 3)" width="\(fmt(rpsWidth))" height="15" fill="\(color)"/>

                    """
                if row.runs > 1 {
                    let minX = labelWidth + barWidth * row.minRequestsPerSecond / maxRPS
                    let maxX = labelWidth + barWidth * row.maxRequestsPerSecond / maxRPS
                    svg += "<line x1=\"\(fmt(minX))\" y1=\"\(y + 10.5)\" x2=\"\(fmt(maxX))\" y2=\"\(y + 10.5)\" stroke=\"black\"/>\n"
                }
                svg += """
                    <text x="\(fmt(labelWidth + rpsWidth + 4))" y="\(y + 14)">\(Int(row.medianRequestsPerSecond.rounded()))</text>
                    <rect x="\(p99X)" y="\(y + 3)" width="\(fmt(p99Width))" height="15" fill="\(color)" opacity="0.7"/>
                    <text x="\(fmt(p99X + p99Width + 4))" y="\(y + 14)">\(String(format: "%.2f", row.p99))</text>

                    """
                y += rowHeight
            }
        }
        svg += """
            <text x="10" y="\(Int(height - 8))" fill="#555">blue: Postern persistent; red: spawn per request (CGI); grey: references and the static ceiling</text>
            </svg>

            """
        return svg
    }

    static func fmt(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
