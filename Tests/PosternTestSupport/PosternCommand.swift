import Foundation
import Synchronization

/// The built `postern` run to its end, as a user runs it (`postern request …`), allowed to run
/// as root.
public enum PosternCommand {
    /// Its exit status, standard output and standard error.
    public static func run(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Paths.binary("postern"))
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["POSTERN_ALLOW_ROOT"] = "true"
        process.environment = environment
        let error = Pipe()
        let output = Pipe()
        process.standardError = error
        process.standardOutput = output
        try process.run()
        // Standard error read on a thread of its own: a full pipe would block the process.
        let said = Mutex<Data>(Data())
        let reader = Thread { said.withLock { $0 = error.fileHandleForReading.readDataToEndOfFile() } }
        reader.start()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return (process.terminationStatus, String(decoding: printed, as: UTF8.self), String(decoding: said.withLock { $0 }, as: UTF8.self))
    }
}
