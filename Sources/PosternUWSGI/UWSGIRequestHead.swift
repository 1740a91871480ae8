import NIOCore

/// The vars of a uwsgi request (modifier1 0): CGI variables with 16-bit little-endian sizes.
///
/// uWSGI docs, "The uwsgi Protocol" / "uwsgi packet header":
/// ```
///  vars block (datasize bytes, from the packet header):
/// +-------------+--------+---------------+--------+-------------+-----
/// | key size    | key    | value size    | value  | key size    | ...
/// | u16 LE      | bytes  | u16 LE        | bytes  | u16 LE      |
/// +-------------+--------+---------------+--------+-------------+-----
/// ```
/// Every size is checked against what remains of the block before it is read (Apache's
/// CVE-2020-11984 was a uwsgi size trusted without that check).
public struct UWSGIRequestHead: Sendable, Hashable {
    public struct Variable: Sendable, Hashable {
        public var key: ByteBufferView
        public var value: ByteBufferView
    }

    /// The vars block as received, checked.
    public let block: ByteBuffer
    /// CONTENT_LENGTH, 0 when absent or empty (nginx sends `""` on a GET).
    public let contentLength: Int

    static let contentLengthKey = Array("CONTENT_LENGTH".utf8)

    /// Parses a whole vars block: one pass over the bytes, nothing allocated; the head keeps
    /// the block, and ``forEachVariable(_:)`` walks it again.
    public init(parsingVars block: ByteBuffer, maxBodyBytes: Int) throws(UWSGIError) {
        let length = try block.withUnsafeReadableBytes { raw throws(UWSGIError) -> Int in
            var contentLength: UnsafeRawBufferPointer?
            try Self.walk(raw) { (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(UWSGIError) in
                guard !key.isEmpty else { throw .emptyKey }
                if key.elementsEqual(Self.contentLengthKey) {
                    if let contentLength, !contentLength.elementsEqual(value) { throw .conflictingContentLength }
                    contentLength = value
                }
            }
            guard let text = contentLength, !text.isEmpty else { return 0 }
            guard text.count <= 18, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .invalidContentLength
            }
            return text.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(declared: length, limit: maxBodyBytes) }
        self.block = block
        self.contentLength = length
    }

    /// Calls `body` with each key and value in wire order, as bytes in the block; valid only
    /// during the call. Keys may repeat (nginx sends a repeated request header twice).
    public func forEachVariable(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        block.withUnsafeReadableBytes { raw in
            try? Self.walk(raw) { (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) in
                body(key.assumingMemoryBound(to: UInt8.self), value.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// The vars in wire order, as views into the block.
    public var variables: [Variable] {
        var variables: [Variable] = []
        block.withUnsafeReadableBytes { raw in
            let view = { (part: UnsafeRawBufferPointer) in
                block.getSlice(at: block.readerIndex + raw.baseAddress!.distance(to: part.baseAddress!), length: part.count)!.readableBytesView
            }
            try? Self.walk(raw) { (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) in
                variables.append(Variable(key: view(key), value: view(value)))
            }
        }
        return variables
    }

    /// Each key and value of `raw`: a u16-LE size, then that many bytes, both checked against
    /// what remains before they are read.
    private static func walk(
        _ raw: UnsafeRawBufferPointer,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws(UWSGIError) -> Void
    ) throws(UWSGIError) {
        guard let base = raw.baseAddress else { return }
        var offset = 0
        func sized(_ field: @autoclosure () -> String) throws(UWSGIError) -> UnsafeRawBufferPointer {
            guard raw.count - offset >= 2 else {
                throw .truncatedVar(field: "the size of the \(field())", declared: 2, available: raw.count - offset)
            }
            let declared = Int(raw[offset]) | Int(raw[offset + 1]) << 8
            offset += 2
            guard declared <= raw.count - offset else {
                throw .truncatedVar(field: "the \(field())", declared: declared, available: raw.count - offset)
            }
            defer { offset += declared }
            return UnsafeRawBufferPointer(start: base + offset, count: declared)
        }
        while offset < raw.count {
            let key = try sized("key")
            let value = try sized("value of \(String(decoding: key.prefix(64), as: UTF8.self))")
            try body(key, value)
        }
    }
}
