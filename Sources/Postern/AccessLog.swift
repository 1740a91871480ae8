import Foundation
import PosternCore

/// The access log (`--access-log PATH|-`): one line per request, every protocol, in the common
/// log format followed by the request's duration in microseconds:
///
/// ```
/// 127.0.0.1 - - [24/Nov/2025:23:40:01 +0000] "GET /hello?x=1 HTTP/1.1" 200 14 532
/// host      ident user [time]                 "request line"          status bytes µs
/// ```
/// Bytes are the response body bytes (`-` for none), as CLF has it. Each line is one `write(2)` on
/// a file opened with O_APPEND, so the workers of one master can share the file.
public final class AccessLog: Sendable {
    private let fd: Int32
    private let ownsFD: Bool

    /// Opens `path` for appending (created 0640), or standard output for `-`.
    public init(path: String) throws {
        if path == "-" {
            fd = 1
            ownsFD = false
        } else {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw ServeError("--access-log \(path): cannot open: \(String(cString: strerror(errno)))") }
            ownsFD = true
        }
    }

    deinit { if ownsFD { close(fd) } }

    public func write(_ record: RequestRecord) {
        var line = Array(Self.format(record).utf8)
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }

    /// The line for `record`, without the newline.
    public static func format(_ record: RequestRecord) -> String {
        let micros = record.duration.components.seconds * 1_000_000 + record.duration.components.attoseconds / 1_000_000_000_000
        let requestLine = "\(record.method) \(record.target) \(record.serverProtocol)"
        return "\(field(record.remoteAddress)) - \(field(record.remoteUser)) [\(timestamp(record.startedAt))] \"\(escaped(requestLine))\" \(record.status) \(record.bytes == 0 ? "-" : String(record.bytes)) \(micros)"
    }

    /// `[10/Oct/2000:13:55:36 -0700]`'s inside, in local time.
    static func timestamp(_ seconds: Double) -> String {
        var time = time_t(seconds)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%d/%b/%Y:%H:%M:%S %z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A field with no spaces or controls (they would break the line's columns).
    static func field(_ text: String) -> String {
        text.isEmpty ? "-" : escaped(text).replacingOccurrences(of: " ", with: "\\x20")
    }

    /// Quotes, backslashes and control bytes as `\xNN`, as Apache does, so a line is one line.
    static func escaped(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if byte < 0x20 || byte == 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out += Array("\\x".utf8) + Array(String(byte, radix: 16).leftPadded(to: 2).utf8)
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
