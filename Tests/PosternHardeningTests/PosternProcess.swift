// Runs the built `postern serve` as a child process for tests that measure it from outside.
import Foundation
import PosternTestSupport

/// A `postern serve` child on loopback ports, stopped when the test ends.
struct PosternProcess {
    let process: ManagedProcess
    let directory: String
    /// The TCP ports it listens on, as `arguments` was given them.
    let ports: [Int]

    /// Starts `postern serve ARGUMENTS(ports)` on `portCount` free loopback ports and waits until
    /// every one accepts connections. A port picked free can be taken before the child binds it
    /// (by another test's listener, or as the local port of one of a test's own client
    /// connections): the child then exits at once, and it is started again on new ports.
    static func start(
        _ label: String,
        ports portCount: Int,
        environment: [String: String]? = nil,
        wrapper: [String] = [],
        arguments: ([Int]) -> [String]
    ) async throws -> PosternProcess {
        var failures: [String] = []
        for _ in 0..<3 {
            var ports: [Int] = []
            while ports.count < portCount {
                let port = try Ports.free()
                if !ports.contains(port) { ports.append(port) }
            }
            let directory = try Paths.makeTestDirectory(label)
            let binary = Paths.binary("postern")
            let process = try ManagedProcess(
                name: "postern", executable: wrapper.first ?? binary,
                arguments: (wrapper.isEmpty ? [] : Array(wrapper.dropFirst()) + [binary]) + ["serve"] + arguments(ports),
                environment: environment, directory: directory)
            let server = PosternProcess(process: process, directory: directory, ports: ports)
            if try await server.waitUntilListening(timeout: 20) { return server }
            failures.append("ports \(ports): \(process.output.suffix(1000))")
            server.stop()
        }
        throw TestFailure("postern serve did not start: \(failures.joined(separator: "; "))")
    }

    /// Whether every port accepts connections before `timeout`; false as soon as the child exits.
    private func waitUntilListening(timeout: Double) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        var waiting = ports
        while ContinuousClock.now < deadline {
            guard process.isRunning else { return false }
            let remaining = waiting
            waiting = try await HostileSocket.onThread {
                remaining.filter { port in
                    guard let fd = try? HostileSocket.connect(port: port) else { return true }
                    close(fd)
                    return false
                }
            }
            if waiting.isEmpty { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("postern serve: nothing listens on \(waiting) after \(timeout) s; it said: \(process.output.suffix(2000))")
    }

    /// The child's resident set size in KiB (VmRSS in /proc/PID/status).
    var residentKiB: Int { status("VmRSS:") }

    /// The child's peak resident set size in KiB (VmHWM).
    var peakResidentKiB: Int { status("VmHWM:") }

    /// The child's open descriptors.
    var openDescriptors: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.pid)/fd").count) ?? 0 }

    private func status(_ field: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
