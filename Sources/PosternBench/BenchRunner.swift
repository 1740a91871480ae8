/// Runs a whole benchmark: backends, front-end, a check per mode, interleaved wrk runs, results.
import Foundation
import PosternFrontEnds

/// Everything one `postern bench` does, in order; every process it starts is stopped at the end.
public struct BenchRunner: Sendable {
    public let options: BenchOptions
    public let registry = ProcessRegistry()

    public init(options: BenchOptions) { self.options = options }

    /// Runs the benchmark and writes results.md, results.json and chart.svg into the out directory.
    public func run() async throws -> BenchReport {
        registry.stopOnSignals()
        defer { registry.stopAll() }
        guard let wrk = BenchWorkspace.which("wrk") else { throw BenchError("wrk is not installed (apt-get install wrk)") }
        let binDirectory = BenchWorkspace.executableDirectory()
        let workspace = try BenchWorkspace(binDirectory: binDirectory, referenceDirectory: BenchWorkspace.findReferences(binDirectory: binDirectory))
        let kind = options.frontEnd
        say(
            "postern bench: \(kind) front-end, modes \(options.modes.map(\.rawValue).joined(separator: " ")), \(options.repeats) × \(options.duration) s, \(options.connections) connections; binaries from \(binDirectory); scratch \(workspace.directory)"
        )
        var skipped: [(BenchMode, String)] = []
        var modes = options.modes.filter { mode in
            if let reason = BenchFrontEndConfig.unsupported(mode, on: kind) {
                skipped.append((mode, reason))
                return false
            }
            return true
        }
        let backends = try await BenchBackends.start(
            modes: modes, workspace: workspace, registry: registry, usesFcgiwrapForCGI: kind == .nginx, cgiBinary: options.cgiBinary)
        skipped += backends.skipped
        modes = modes.filter { mode in mode == .static || backends.endpoints[mode] != nil }

        var frontEnd: FrontEnd?
        if modes.contains(where: { !$0.isDirect }) {
            let snippet = BenchFrontEndConfig.snippet(for: kind, endpoints: backends.endpoints, directory: workspace.directory)
            let started: FrontEnd
            switch kind {
            case .nginx: started = try await FrontEnd.nginx(snippets: [snippet], directory: workspace.directory)
            case .lighttpd: started = try await FrontEnd.lighttpd(snippets: [snippet], directory: workspace.directory)
            case .apache: started = try await FrontEnd.apache(snippets: [snippet], directory: workspace.directory)
            case .haproxy: preconditionFailure("the bench runs through nginx, lighttpd or apache (BenchCommand refuses haproxy)")
            }
            registry.add(started.process)
            frontEnd = started
        }
        func url(_ mode: BenchMode) -> (port: Int, path: String, scheme: String) {
            if mode.isDirect { return (backends.endpoints[mode]!.tcpPort!, mode.path, mode.scheme) }
            return (frontEnd!.port, mode.path, "http")
        }

        // Every mode must answer the hello before it is timed.
        modes = modes.filter { mode in
            let target = url(mode)
            let checked =
                target.scheme == "https"
                ? HelloCheck.checkTLS(
                    port: target.port, path: target.path, postern: workspace.binary("postern") ?? "postern",
                    authority: BenchWorkspace.TLSFiles(directory: workspace.directory).authority)
                : HelloCheck.check(port: target.port, path: target.path)
            switch checked {
            case .success:
                return true
            case .failure(let error):
                skipped.append((mode, "check failed: \(error)" + (frontEnd.map { "\n" + String($0.logs.suffix(1500)) } ?? "")))
                return false
            }
        }
        for (mode, reason) in skipped { say("postern bench: skipping \(mode.rawValue): \(reason)") }
        guard !modes.isEmpty else { throw BenchError("no mode can run") }

        if options.warmup > 0 {
            for mode in modes {
                let target = url(mode)
                _ = try await wrkRun(
                    wrk, url: "\(target.scheme)://127.0.0.1:\(target.port)\(target.path)", duration: options.warmup, workspace: workspace, label: "warmup")
            }
        }
        let loadBefore = LoadAverage.current()
        var runs: [BenchRun] = []
        let total = options.repeats * modes.count
        for repeatIndex in 1...options.repeats {
            for mode in modes {
                let target = url(mode)
                let pid = backends.endpoints[mode]?.pid
                let cpuBefore = pid.flatMap { BackendCPU.seconds(inTreeOf: $0) }
                let result = try await wrkRun(
                    wrk, url: "\(target.scheme)://127.0.0.1:\(target.port)\(target.path)", duration: options.duration, workspace: workspace,
                    label: mode.rawValue)
                let cpuAfter = pid.flatMap { BackendCPU.seconds(inTreeOf: $0) }
                var cpu: Double?
                if let cpuBefore, let cpuAfter, result.requests > 0 { cpu = (cpuAfter - cpuBefore) * 1e6 / Double(result.requests) }
                let rss = pid.flatMap { PeakRSS.largest(inTreeOf: $0) }
                let run = BenchRun(
                    mode: mode, repeatIndex: repeatIndex, result: result, backendPeakRSS: rss, loadAverage: LoadAverage.current(),
                    backendMicrosecondsPerRequest: cpu)
                runs.append(run)
                let name = mode.rawValue.padding(toLength: 21, withPad: " ", startingAt: 0)
                say(
                    "[\(runs.count)/\(total)] repeat \(repeatIndex) \(name)"
                        + String(
                            format: "%9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  load %.2f",
                            result.requestsPerSecond, result.p50, result.p99, result.errors, run.loadAverage)
                        + (cpu.map { String(format: "  cpu %.1f µs/req", $0) } ?? ""))
            }
        }
        let loadAfter = LoadAverage.current()
        let rows = BenchSummary.summarize(runs, modes: modes)
        let report = BenchReport(
            frontEnd: kind.rawValue, duration: options.duration, connections: options.connections, repeats: options.repeats,
            cores: ProcessInfo.processInfo.activeProcessorCount, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter,
            date: ISO8601DateFormatter().string(from: Date()), skipped: skipped.map { BenchReport.Skipped(mode: $0.0.rawValue, reason: $0.1) },
            summary: rows, runs: runs
        )
        try report.write(to: options.outDirectory)
        say("")
        say(report.markdown)
        say("postern bench: wrote \(options.outDirectory)/results.md, results.json, chart.svg")
        registry.stopAll()
        try? FileManager.default.removeItem(atPath: workspace.directory)
        return report
    }

    private func wrkRun(_ wrk: String, url: String, duration: Double, workspace: BenchWorkspace, label: String) async throws -> WrkResult {
        let seconds = max(1, Int(duration.rounded()))
        let logName = "wrk-\(label)"
        try? FileManager.default.removeItem(atPath: workspace.directory + "/\(logName).log")
        let process = try ManagedProcess(
            name: logName, executable: wrk,
            arguments: ["-t1", "-c\(options.connections)", "-d\(seconds)s", "--timeout", "5s", "--latency", url],
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C"], directory: workspace.directory
        )
        registry.add(process)
        let deadline = Date().addingTimeInterval(Double(seconds) + 20)
        while process.isRunning {
            if Date() > deadline {
                process.stop()
                throw BenchError("wrk did not finish: \(process.output)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let result = WrkResult.parse(process.output) else { throw BenchError("cannot read wrk's output:\n\(process.output)") }
        return result
    }

    private func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
