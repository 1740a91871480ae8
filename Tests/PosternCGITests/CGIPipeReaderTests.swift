// The script pipe reader's read without waiting: what lets a small script's whole output go out
// as one body of bytes.
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
@testable import PosternCGIHost
import Testing

@Suite("CGI pipe reader")
struct CGIPipeReaderTests {
    @Test("readIfReady: the bytes there, then the end once the writer has closed; nothing while it is open")
    func readIfReady() throws {
        let reactor = try #require(CGIReactor.shared)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
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
}
