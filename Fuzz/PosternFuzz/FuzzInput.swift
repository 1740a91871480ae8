// Splits a fuzzer's input into a feeding pattern and the bytes to feed, so every target also
// exercises records, netstrings and heads that straddle reads.
import NIOCore

/// A fuzzer input: the first byte chooses the chunk size the rest is fed in (1...64, or all at
/// once when it is 0) and, through its top bit, a variant the target may use (a parser mode).
public struct FuzzInput: Sendable {
    public let chunkSize: Int
    public let variant: Bool
    public let bytes: [UInt8]

    public init(_ data: UnsafeBufferPointer<UInt8>) {
        guard let first = data.first else {
            chunkSize = 0
            variant = false
            bytes = []
            return
        }
        let low = Int(first & 0x3f)
        chunkSize = low == 0 ? Int.max : low
        variant = first & 0x80 != 0
        bytes = Array(data.dropFirst())
    }

    /// At most this many chunks: a 4 KiB input fed a byte at a time costs 4,096 passes through
    /// the decoder and finds nothing that 64 passes over its first bytes do not (a fuzz run's
    /// executions per second fell from 1,150 to 760 as its inputs grew).
    public static let maxChunks = 64

    /// The bytes as the chunks the pattern asks for (at least one chunk, possibly empty); past
    /// ``maxChunks`` chunks, the rest comes in one.
    public var chunks: [ByteBuffer] {
        guard !bytes.isEmpty else { return [ByteBuffer()] }
        var result: [ByteBuffer] = []
        var start = 0
        while start < bytes.count {
            let end = chunkSize >= bytes.count - start || result.count == Self.maxChunks - 1 ? bytes.count : start + chunkSize
            result.append(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        return result
    }
}
