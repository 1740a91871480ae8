// A deterministic random number generator (SplitMix64) so every property run can be replayed.

struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A length that often sits on a boundary a length field cares about.
    mutating func length(upTo limit: Int) -> Int {
        let boundaries = [0, 1, 127, 128, 255, 256, 65535, 65536].filter { $0 <= limit }
        if Int.random(in: 0..<4, using: &self) == 0 { return boundaries.randomElement(using: &self)! }
        return Int.random(in: 0...limit, using: &self)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    /// Printable ASCII without NUL, of `count` characters (the SCGI and uwsgi encoders take strings).
    mutating func text(_ count: Int) -> String {
        String(decoding: (0..<count).map { _ in UInt8.random(in: 0x21...0x7e, using: &self) }, as: UTF8.self)
    }

    /// Splits `bytes` into random chunks (1 byte to all of them) as reads would deliver them.
    mutating func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        let maxChunk = [1, 7, 100, 4096, max(bytes.count, 1)].randomElement(using: &self)!
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 1...maxChunk, using: &self))
            result.append(Array(bytes[start..<end]))
            start = end
        }
        return result
    }
}
