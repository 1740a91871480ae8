import CPosternSocket
import NIOCore
import Testing

@testable import PosternCGIHost

// The script pipe reader's read without waiting: what lets a small script's whole output go out
// as one body of bytes.
#if canImport(Glibc)
import Glibc
#endif

@Suite("CGI pipe reader")
struct CGIPipeReaderTests {
    @Test("readIfReady: the bytes there, then the end once the writer has closed; nothing while it is open")
    func readIfReady() throws {
        let reactor = try #require(CGIReactor.shared)
        var ends: [Int32] = [0, 0]
        // Close-on-exec from the start: the other tests of this process spawn children meanwhile,
        // and one holding the write end would keep the end from coming.
        #expect(ends.withUnsafeMutableBufferPointer { postern_pipe_cloexec($0.baseAddress) } == 0)
        let reader = CGIPipeReader(fd: ends[0], reactor: reactor)
        defer { reader.close() }
        guard case .empty = try reader.readIfReady() else {
            Issue.record("an open pipe without data must read as empty")
            return
        }
        #expect(write(ends[1], "Status: 200 OK\r\n\r\nhi", 20) == 20)
        guard case .bytes(let bytes) = try reader.readIfReady() else {
            Issue.record("the bytes written must be read")
            return
        }
        #expect(String(buffer: bytes) == "Status: 200 OK\r\n\r\nhi")
        guard case .empty = try reader.readIfReady() else {
            Issue.record("nothing more while the writer is open")
            return
        }
        close(ends[1])
        guard case .end = try reader.readIfReady() else {
            Issue.record("the writer closed: the end")
            return
        }
    }

    @Test("a full pipe is read in one go past the small first read, every byte in order, then the end")
    func fullPipe() throws {
        let reactor = try #require(CGIReactor.shared)
        var ends: [Int32] = [0, 0]
        // Close-on-exec from the start: the other tests of this process spawn children meanwhile,
        // and one holding the write end would keep the end from coming.
        #expect(ends.withUnsafeMutableBufferPointer { postern_pipe_cloexec($0.baseAddress) } == 0)
        let reader = CGIPipeReader(fd: ends[0], reactor: reactor)
        defer { reader.close() }
        // 60,000 bytes: more than the first read takes, less than a pipe holds (64 KiB).
        let sent = (0..<60_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        #expect(sent.withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) } == sent.count)
        close(ends[1])
        guard case .bytes(let bytes) = try reader.readIfReady() else {
            Issue.record("the bytes written must be read")
            return
        }
        #expect(bytes.readableBytes == sent.count, "one attempt takes all that is there")
        #expect(Array(bytes.readableBytesView) == sent)
        guard case .end = try reader.readIfReady() else {
            Issue.record("the writer closed: the end")
            return
        }
    }
}
