import CPosternSocket
import PosternRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A worker's standard error, read by its master: passed on to the master's own standard error
/// line by line (where the workers' output went before: the terminal, the journal), with the
/// last lines kept, so that a worker that cannot start is logged with what it said (a bad
/// option, a missing file) beside its exit status.
///
/// One thread per worker reads its pipe until the worker and every process holding the pipe
/// have closed it.
package final class ChildOutput: Sendable {
    /// The pipe's end the worker gets as its descriptor 2; closed here once it is spawned.
    package let writeEnd: Int32
    private let readEnd: Int32
    private let kept = Mutex<(lines: [String], partial: [UInt8], ended: Bool)>(([], [], false))
    private static let keptLines = 6

    package init() throws {
        var ends: [Int32] = [0, 0]
        guard ChildProcess.makePipe(&ends) else { throw ProcessStartError.cannotMakePipe(errno: errno) }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    /// After the spawn: the master's copy of the write end closed, the reading begun.
    package func start() {
        close(writeEnd)
        PosixThread.start(name: "postern-output") { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                buffer.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < count {
                        let written = write(2, raw.baseAddress! + offset, count - offset)
                        if written < 0 && errno == EINTR { continue }
                        guard written > 0 else { break }
                        offset += written
                    }
                }
                keep(buffer[0..<count])
            }
            close(readEnd)
            kept.withLock { $0.ended = true }
        }
    }

    /// If the spawn failed: both ends closed.
    package func discard() {
        close(writeEnd)
        close(readEnd)
    }

    private func keep(_ bytes: ArraySlice<UInt8>) {
        kept.withLock { state in
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    state.lines.append(String(decoding: state.partial, as: UTF8.self))
                    state.partial.removeAll(keepingCapacity: true)
                    if state.lines.count > Self.keptLines { state.lines.removeFirst() }
                } else if state.partial.count < 1024 {
                    state.partial.append(byte)
                }
            }
        }
    }

    /// The last lines the worker wrote (waiting up to `seconds` for the pipe's end, so that a
    /// worker just reaped has had its last words read), joined with " | ".
    package func lastLines(waiting seconds: Double = 0.2) -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while !kept.withLock({ $0.ended }) && ContinuousClock.now < deadline { usleep(5_000) }
        return kept.withLock { state in
            (state.lines + (state.partial.isEmpty ? [] : [String(decoding: state.partial, as: UTF8.self)]))
                .map(Self.trimmed).filter { !$0.isEmpty }.joined(separator: " | ")
        }
    }

    /// `line` without the spaces and tabs at its ends.
    private static func trimmed(_ line: String) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = line.firstIndex(where: { !blank($0) }), let last = line.lastIndex(where: { !blank($0) }) else { return "" }
        return String(line[first...last])
    }
}
