/// An SVG bar chart of requests/s and p99 latency per mode, written without any dependency.
import Foundation

public enum BenchChart {
    /// Two horizontal bar charts side by side: requests/s (median, with min–max whiskers) and p99.
    public static func svg(_ rows: [BenchSummary], title: String) -> String {
        let rowHeight = 22.0
        let top = 56.0
        let labelWidth = 170.0
        let barWidth = 300.0
        let gap = 40.0
        let height = top + Double(rows.count) * rowHeight + 30
        let width = labelWidth + 2 * barWidth + gap + 120
        let maxRPS = max(rows.map(\.maxRequestsPerSecond).max() ?? 1, 1)
        let maxP99 = max(rows.map(\.p99).max() ?? 1, 0.001)
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="10" y="20" font-size="14" font-weight="bold">\(escape(title))</text>
            <text x="\(labelWidth)" y="44" font-weight="bold">requests/s (median; whisker: min–max)</text>
            <text x="\(labelWidth + barWidth + gap)" y="44" font-weight="bold">p99 latency (ms)</text>

            """
        for (index, row) in rows.enumerated() {
            let y = top + Double(index) * rowHeight
            let color =
                row.mode.rawValue.hasPrefix("cgi") || row.mode == .fcgiwrap
                ? "#c0504d"
                : (row.mode.summary.contains("reference") || row.mode == .static ? "#8c8c8c" : "#1f77b4")
            let rpsWidth = barWidth * row.medianRequestsPerSecond / maxRPS
            let minX = labelWidth + barWidth * row.minRequestsPerSecond / maxRPS
            let maxX = labelWidth + barWidth * row.maxRequestsPerSecond / maxRPS
            let p99Width = barWidth * row.p99 / maxP99
            let p99X = labelWidth + barWidth + gap
            svg += """
                <text x="\(labelWidth - 6)" y="\(y + 14)" text-anchor="end">\(escape(row.mode.rawValue))</text>
                <rect x="\(labelWidth)" y="\(y + 3)" width="\(fmt(rpsWidth))" height="15" fill="\(color)"/>
                <line x1="\(fmt(minX))" y1="\(y + 10.5)" x2="\(fmt(maxX))" y2="\(y + 10.5)" stroke="black"/>
                <text x="\(fmt(labelWidth + rpsWidth + 4))" y="\(y + 14)">\(Int(row.medianRequestsPerSecond.rounded()))</text>
                <rect x="\(p99X)" y="\(y + 3)" width="\(fmt(p99Width))" height="15" fill="\(color)" opacity="0.7"/>
                <text x="\(fmt(p99X + p99Width + 4))" y="\(y + 14)">\(String(format: "%.2f", row.p99))</text>

                """
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
