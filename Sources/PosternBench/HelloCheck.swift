/// One plain HTTP/1.0 GET that proves a mode answers `200` with the 14-byte hello before it is timed.
import Foundation
import PosternFrontEnds

public enum HelloCheck {
    public static let body = "Hello, World!\n"

    /// GETs `path` from 127.0.0.1:`port` and checks the status line and the body.
    public static func check(port: Int, path: String) -> Result<Void, BenchError> {
        guard let fd = LoopbackProbe.connect(port: port) else { return .failure(BenchError("cannot connect to port \(port)")) }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { return .failure(BenchError("send failed")) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while response.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        let statusLine = String(decoding: response.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        guard statusLine.contains(" 200") else { return .failure(BenchError("got \(statusLine.isEmpty ? "no response" : statusLine) for \(path)")) }
        guard text.hasSuffix("\r\n\r\n" + body) else { return .failure(BenchError("unexpected body for \(path): \(text.suffix(200))")) }
        return .success(())
    }

    /// The same over TLS, by `postern request` trusting `authority` (the bench's own CA).
    public static func checkTLS(port: Int, path: String, postern: String, authority: String) -> Result<Void, BenchError> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: postern)
        process.arguments = ["request", "https://127.0.0.1:\(port)\(path)", "--cacert", authority]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { return .failure(BenchError("postern request: \(error)")) }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, text.hasPrefix("HTTP/1.1 200") else {
            return .failure(BenchError("got \(text.prefix(200).isEmpty ? "no response" : String(text.prefix(200))) for https \(path)"))
        }
        guard text.hasSuffix(body) else { return .failure(BenchError("unexpected body for https \(path): \(text.suffix(200))")) }
        return .success(())
    }
}
