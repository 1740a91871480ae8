// Runs the built `postern serve` as a child process for tests that measure it from outside.
import Foundation
import PosternTestSupport

/// A `postern serve` child on loopback ports, stopped when the test ends.
struct PosternProcess {
    let process: ManagedProcess
    let directory: String

    /// Starts `postern serve ARGUMENTS` and waits until `port` accepts connections.
    static func start(_ label: String, arguments: [String], waitFor port: Int) async throws -> PosternProcess {
        let directory = try Paths.makeTestDirectory(label)
        let process = try ManagedProcess(name: "postern", executable: Paths.binary("postern"), arguments: ["serve"] + arguments, directory: directory)
        do {
            try await Wait.forPort(port)
        } catch {
            process.stop()
            throw TestFailure("\(error); postern said: \(process.output.suffix(2000))")
        }
        return PosternProcess(process: process, directory: directory)
    }

    /// The child's resident set size in KiB (VmRSS in /proc/PID/status).
    var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(process.pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
