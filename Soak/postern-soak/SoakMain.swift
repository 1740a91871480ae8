// The soak driver: N requests over HTTP, FastCGI, SCGI and uwsgi against one `postern serve`.
import Foundation
import PosternCore
import Synchronization

/// `postern-soak REQUESTS CONCURRENCY PID http=PORT fastcgi=PORT scgi=PORT uwsgi=PORT`
///
/// Splits REQUESTS evenly over the protocols and CONCURRENCY worker threads, reads the server's
/// VmRSS after a warm-up (1 % of the requests, at least 1,000) and at the end, and prints one
/// summary line per protocol and a final `soak:` line. Exits 1 on any error or a drift of 5 % or more.
@main
enum SoakMain {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 5, let total = Int(arguments[1]), let concurrency = Int(arguments[2]), let pid = Int32(arguments[3]) else {
            print("usage: postern-soak REQUESTS CONCURRENCY PID PROTOCOL=PORT...")
            exit(2)
        }
        var targets: [(GatewayProtocol, Int)] = []
        for spec in arguments.dropFirst(4) {
            let parts = spec.split(separator: "=")
            guard parts.count == 2, let kind = GatewayProtocol(rawValue: String(parts[0])), let port = Int(parts[1]) else {
                print("bad target \(spec)")
                exit(2)
            }
            targets.append((kind, port))
        }
        let warmup = max(1000, total / 100)
        let warmupErrors = drive(warmup, targets: targets, concurrency: concurrency, offset: 0)
        let startRSS = residentKiB(pid)
        let started = Date()
        let errors = drive(total, targets: targets, concurrency: concurrency, offset: warmup)
        let seconds = Date().timeIntervalSince(started)
        let endRSS = residentKiB(pid)
        let drift = startRSS > 0 ? Double(endRSS - startRSS) / Double(startRSS) * 100 : 100
        let errorCount = errors.values.reduce(0, +) + warmupErrors.values.reduce(0, +)
        for (kind, _) in targets {
            print("soak: \(kind): \(total / targets.count) requests, \(errors[kind] ?? 0) errors")
        }
        print(
            String(
                format: "soak: %d requests (+%d warm-up) in %.1f s (%.0f/s), %d errors, RSS %d KiB -> %d KiB (drift %+.2f %%)",
                total, warmup, seconds, Double(total) / seconds, errorCount, startRSS, endRSS, drift))
        exit(errorCount == 0 && drift < 5 ? 0 : 1)
    }

    /// Runs `count` requests round-robin over `targets` on `concurrency` threads; errors per protocol.
    static func drive(_ count: Int, targets: [(GatewayProtocol, Int)], concurrency: Int, offset: Int) -> [GatewayProtocol: Int] {
        let errors = Mutex<[GatewayProtocol: Int]>([:])
        let firstError = Mutex<String?>(nil)
        DispatchQueue.concurrentPerform(iterations: concurrency) { worker in
            let clients = targets.map { SoakExchange($0.0, port: $0.1, source: UInt8(2 + (worker * 37) % 250)) }
            var index = worker
            while index < count {
                let client = clients[index % clients.count]
                do {
                    try client.run(offset + index)
                } catch {
                    errors.withLock { $0[client.gatewayProtocol, default: 0] += 1 }
                    firstError.withLock {
                        if $0 == nil {
                            $0 = "\(client.gatewayProtocol): \(error)"
                            print("soak: first error: \($0!)")
                        }
                    }
                }
                index += concurrency
            }
        }
        return errors.withLock { $0 }
    }

    static func residentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
