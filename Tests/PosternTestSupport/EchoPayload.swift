import NIOCore

/// A deterministic payload (xorshift32) for echo tests: unlike a repeated byte, a reordered,
/// dropped or duplicated chunk changes it.
public enum EchoPayload {
    public static func make(bytes count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(count)
        var state: UInt32 = 2_463_534_242
        for _ in 0..<(count / 4) {
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            buffer.writeInteger(state)
        }
        return buffer
    }
}
