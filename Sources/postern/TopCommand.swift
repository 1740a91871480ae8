import ArgumentParser
import Foundation
import NIOCore
import Postern
import PosternCLI
import PosternClient
import PosternCore

/// `postern top STATUS-URL`: the status page (`--status`) as a table refreshed in the terminal,
/// like uwsgitop: the workers with their pid, state, requests, requests in flight and memory,
/// the listeners' accept queues, requests per second.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Watch a running server's status page (--status ADDR) in the terminal.",
        discussion:
            "Refreshes every --interval seconds until interrupted (Ctrl-C). With --once, or when standard output is not a terminal, it prints frames one after another instead of redrawing."
    )

    @Argument(help: ArgumentHelp("The status page: http://HOST:PORT/ (the server's --status address).", valueName: "STATUS-URL"))
    var url: String

    @Option(help: ArgumentHelp("Seconds between refreshes.", valueName: "SECONDS"))
    var interval: Double = 1

    @Flag(help: "Print one frame (after two readings --interval apart, for the request rate) and exit.")
    var once = false

    func validate() throws {
        guard interval > 0 else { throw ValidationError("--interval must be more than 0") }
    }

    func run() async throws {
        let target = try ClientTarget(parsing: url)
        guard target.listenerProtocol == .http else { throw ValidationError("the status page is HTTP: give http://HOST:PORT/") }
        let redraw = !once && isatty(1) == 1
        var previous: (top: StatusTop, at: ContinuousClock.Instant)?
        while true {
            let response: ClientResponse
            do {
                response = try await ProtocolClients.send(ClientRequest(method: "GET", target: target.requestTarget), to: target)
            } catch {
                throw ClientError.unreachable(server: "status page at \(target.address)", reason: "\(error)")
            }
            guard response.status.code == 200 else { throw ClientError.statusPageAnswered(address: "\(target.address)", status: response.status.code) }
            let now = ContinuousClock.now
            let seconds = previous.map { (now - $0.at).inSeconds } ?? 0
            let top: StatusTop
            do {
                top = try StatusTop(json: Data(response.body.readableBytesView), previous: previous?.top, secondsSincePrevious: seconds)
            } catch {
                // An emperor's page: a line per app, no rate to wait for.
                guard let emperor = try? EmperorTop(json: Data(response.body.readableBytesView)) else { throw ClientError.notAStatusPage(url: url) }
                print((redraw ? "\u{1B}[H\u{1B}[2J" : "") + emperor.text, terminator: redraw ? "" : "\n")
                fflush(nil)
                if once { return }
                try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                continue
            }
            if !once || previous != nil {
                print((redraw ? "\u{1B}[H\u{1B}[2J" : "") + top.text, terminator: redraw ? "" : "\n")
                // Into a pipe or a file stdout is block-buffered: each frame leaves whole, now.
                fflush(nil)
                if once { return }
            }
            previous = (top, now)
            try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
        }
    }
}
