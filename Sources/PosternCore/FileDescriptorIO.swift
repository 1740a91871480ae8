/// Plain read(2)/write(2) on the standard descriptors, for CGI program mode (no event loop).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking I/O on a file descriptor, retrying on EINTR and short writes.
public enum FileDescriptorIO {
    /// Writes every byte; returns `false` if the descriptor fails (the reader went away).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Reads up to `count` bytes; `[]` at end of input, `nil` on an error.
    public static func readChunk(_ fd: Int32, upTo count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, count) }
            if got < 0 {
                if errno == EINTR { continue }
                return nil
            }
            buffer.removeLast(count - got)
            return buffer
        }
    }
}
