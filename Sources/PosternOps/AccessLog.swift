import Logging
import PosternCore
import PosternEngine
import PosternRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The access log (`--access-log PATH|-`): one line per request, every protocol, in the common
/// log format followed by the request's duration in microseconds:
///
/// ```
/// 127.0.0.1 - - [24/Nov/2025:23:40:01 +0000] "GET /hello?x=1 HTTP/1.1" 200 14 532
/// host      ident user [time]                 "request line"          status bytes µs
/// ```
/// Bytes are the response body bytes (`-` for none), as CLF has it. Each line is one `write(2)` on
/// a file opened with O_APPEND, so the workers of one master can share the file.
///
/// A line that cannot be written (a full disk: ENOSPC; a quota; RLIMIT_FSIZE: EFBIG) is dropped,
/// never waited for: requests are served regardless. The first failure is logged as an error,
/// then at most one reminder per ``reportInterval`` while it lasts, each with the count of lines
/// lost; the first line written again is announced with the total lost.
public final class AccessLog: Sendable {
    private let fd: Int32
    private let ownsFD: Bool
    private let path: String
    private let logger: Logger
    private let failures = Mutex(Failures())
    /// The least time between two messages about the same failure.
    public static let reportInterval: Duration = .seconds(10)

    /// Lines lost since writing last worked, and when that was last said.
    private struct Failures {
        var lost = 0
        var lastReport: ContinuousClock.Instant?
    }

    /// Opens `path` for appending (created 0640), or standard output for `-`.
    public init(path: String, logger: Logger = Logger(label: "postern.access-log")) throws {
        self.path = path
        self.logger = logger
        if path == "-" {
            fd = 1
            ownsFD = false
        } else {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw PathError.cannotOpen(option: "--access-log", path: path, errno: errno) }
            ownsFD = true
        }
    }

    deinit { if ownsFD { close(fd) } }

    /// Opens the path again (SIGUSR1, after logrotate has moved the file): the new file takes
    /// the old one's descriptor number (dup2(2)), so a line being written goes to one file or the
    /// other, never to a closed descriptor. Standard output is left alone.
    public func reopen() {
        guard ownsFD else { return }
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fresh >= 0 else {
            logger.error("access log \(path): cannot reopen (\(String(cString: strerror(errno)))); still writing to the file it had open")
            return
        }
        if dup2(fresh, fd) < 0 {
            logger.error("access log \(path): cannot reopen (dup2: \(String(cString: strerror(errno))))")
        } else {
            // dup2 clears close-on-exec on the target: set it again.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            logger.info("access log \(path): reopened")
        }
        close(fresh)
    }

    public func write(_ record: RequestRecord) {
        var line = Array(Self.format(record).utf8)
        line.append(UInt8(ascii: "\n"))
        let failure: Int32? = line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return written < 0 ? errno : ENOSPC }
                offset += written
            }
            return nil
        }
        if let failure {
            lineLost(String(cString: strerror(failure)))
        } else if failures.withLock({ $0.lost > 0 }) {
            lineWritten()
        }
    }

    private func lineLost(_ reason: String) {
        let now = ContinuousClock.now
        let report: Int? = failures.withLock { failures in
            failures.lost += 1
            if let last = failures.lastReport, now - last < Self.reportInterval { return nil }
            failures.lastReport = now
            return failures.lost
        }
        guard let lost = report else { return }
        if lost == 1 {
            logger.error("access log \(path): cannot write (\(reason)); requests are served, their lines dropped until it can be written again")
        } else {
            logger.error("access log \(path): still cannot write (\(reason)); \(lost) lines dropped so far")
        }
    }

    private func lineWritten() {
        let lost = failures.withLock { failures in
            defer { failures = Failures() }
            return failures.lost
        }
        if lost > 0 { logger.notice("access log \(path): writing again; \(lost) lines were dropped") }
    }

    /// The line for `record`, without the newline.
    public static func format(_ record: RequestRecord) -> String {
        let micros = record.duration.components.seconds * 1_000_000 + record.duration.components.attoseconds / 1_000_000_000_000
        let requestLine = "\(record.method) \(record.target) \(record.serverProtocol)"
        return
            "\(field(record.remoteAddress)) - \(field(record.remoteUser)) [\(timestamp(record.startedAt))] \"\(escaped(requestLine))\" \(record.status) \(record.bytes == 0 ? "-" : String(record.bytes)) \(micros)"
    }

    /// `[10/Oct/2000:13:55:36 -0700]`'s inside, in local time.
    package static func timestamp(_ seconds: Double) -> String {
        var time = time_t(seconds)
        var parts = tm()
        localtime_r(&time, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%d/%b/%Y:%H:%M:%S %z", &parts)
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A field with no spaces or controls (they would break the line's columns).
    package static func field(_ text: String) -> String {
        text.isEmpty ? "-" : escaped(text).split(separator: " ", omittingEmptySubsequences: false).joined(separator: "\\x20")
    }

    /// Quotes, backslashes and control bytes as `\xNN`, as Apache does, so a line is one line.
    package static func escaped(_ text: String) -> String {
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
