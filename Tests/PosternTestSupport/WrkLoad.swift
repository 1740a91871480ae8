import Foundation

/// `wrk` sending GETs and 1 KiB POSTs in turn (`…/hello`, `…/echo`) to a front-end on
/// 127.0.0.1, in the background, while a test restarts what is behind it; ``finish()`` says how
/// many requests failed: a socket error (connect, read, write, timeout) or an answer that is not
/// 2xx or 3xx.
public final class WrkLoad: @unchecked Sendable {
    public struct Result: Sendable, CustomStringConvertible {
        public let requests: Int
        public let socketErrors: Int
        public let badStatuses: Int
        /// What wrk printed.
        public let output: String
        public var failures: Int { socketErrors + badStatuses }
        public var description: String { "\(requests) requests, \(socketErrors) socket errors, \(badStatuses) not 2xx/3xx\n\(output)" }
    }

    private let process: Process
    private let output: Pipe

    /// Starts `connections` connections for `seconds` against `http://127.0.0.1:port` + `prefix`.
    public init(port: Int, prefix: String = "", seconds: Int, connections: Int = 8, directory: String) throws {
        let script = directory + "/get-and-post.lua"
        try """
        local body = string.rep("p", 1024)
        local counter = 0
        request = function()
            counter = counter + 1
            if counter % 2 == 0 then
                return wrk.format("POST", "\(prefix)/echo", {["Content-Type"] = "application/octet-stream"}, body)
            end
            return wrk.format("GET", "\(prefix)/hello")
        end
        """.write(toFile: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t2", "-c\(connections)", "-d\(seconds)s", "--timeout", "10s", "-s", script, "http://127.0.0.1:\(port)/"]
        output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    /// Waits for wrk to end (off the cooperative pool) and reads its counts.
    public func finish() async throws -> Result {
        let process = self.process
        let output = self.output
        let text = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
        guard process.terminationStatus == 0, let requests = Self.number(#"(\d+) requests in"#, text) else {
            throw TestFailure("wrk failed (status \(process.terminationStatus)):\n\(text)")
        }
        let socket = Self.numbers(#"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"#, text).reduce(0, +)
        return Result(requests: requests, socketErrors: socket, badStatuses: Self.number(#"Non-2xx or 3xx responses: (\d+)"#, text) ?? 0, output: text)
    }

    private static func number(_ pattern: String, _ text: String) -> Int? {
        numbers(pattern, text).first
    }

    private static func numbers(_ pattern: String, _ text: String) -> [Int] {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text))
        else { return [] }
        return (1..<match.numberOfRanges).compactMap { index in
            Range(match.range(at: index), in: text).flatMap { Int(text[$0]) }
        }
    }
}
