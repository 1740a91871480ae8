/// `postern bench`: CGI against the persistent gateways, through a real front-end, measured with wrk.
import ArgumentParser
import PosternBench
import PosternFrontEnds

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark CGI against Postern's FastCGI, SCGI, uwsgi and HTTP listeners through a real front-end.",
        discussion: """
            Uses the binaries next to postern (build them first: swift build -c release --static-swift-stdlib); \
            starts the front-end on loopback, the backends and wrk; runs the modes interleaved, repeat after \
            repeat; writes results.md, results.json and chart.svg; stops everything it started.
            Modes: \(BenchMode.allCases.map(\.rawValue).joined(separator: ", ")); uwsgi-python = its three; all.
            """
    )

    @Option(help: "The front-end: nginx, lighttpd or apache.")
    var frontend: String = "nginx"

    @Option(help: ArgumentHelp("Comma-separated modes (default: all).", valueName: "LIST"))
    var modes: String = "all"

    @Option(help: ArgumentHelp("Seconds per run.", valueName: "S"))
    var duration: Double?

    @Option(help: ArgumentHelp("wrk connections.", valueName: "N"))
    var connections: Int = 16

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Runs of each mode, interleaved (A B C A B C ...).", valueName: "K"))
    var repeats: Int?

    @Option(help: ArgumentHelp("Where results.md, results.json and chart.svg go.", valueName: "DIR"))
    var out: String = "bench-results"

    @Option(help: ArgumentHelp("The CGI program the cgi mode runs (default: hello-cgi next to postern), e.g. a -static-executable build.", valueName: "PATH"))
    var cgiBinary: String?

    @Flag(help: "About a second per mode, one repeat, no warm-up: proves every mode works.")
    var quick = false

    @Flag(help: "Fail if a requested mode could not run or any request failed (the test command uses it).")
    var strict = false

    func validate() throws {
        guard let kind = FrontEnd.Kind(rawValue: frontend), kind != .haproxy else { throw ValidationError("--frontend must be nginx, lighttpd or apache") }
        do { _ = try BenchMode.parseList(modes) } catch { throw ValidationError("\(error)") }
        guard connections > 0, connections <= 1024 else { throw ValidationError("--connections must be 1...1024") }
        if let repeats, repeats < 1 { throw ValidationError("--repeat must be at least 1") }
        if let duration, duration < 1 || duration > 600 { throw ValidationError("--duration must be 1...600 seconds") }
    }

    func run() async throws {
        let options = BenchOptions(
            frontEnd: FrontEnd.Kind(rawValue: frontend)!, modes: try BenchMode.parseList(modes),
            duration: duration ?? (quick ? 1 : 5), connections: connections, repeats: repeats ?? (quick ? 1 : 3),
            outDirectory: out, warmup: quick ? 0 : 1, cgiBinary: cgiBinary
        )
        do {
            let report = try await BenchRunner(options: options).run()
            if strict {
                let problems =
                    report.skipped.map { "\($0.mode) skipped" } + report.summary.filter { $0.errors > 0 }.map { "\($0.mode.rawValue): \($0.errors) errors" }
                if !problems.isEmpty { throw ValidationError("--strict: " + problems.joined(separator: "; ")) }
            }
        } catch let error as BenchError {
            throw ValidationError(error.description)
        }
    }
}
