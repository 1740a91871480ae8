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

    /// The vars in wire order. Keys may repeat (nginx sends a repeated request header twice).
    public var variables: [Variable]
    /// CONTENT_LENGTH, 0 when absent or empty (nginx sends `""` on a GET).
    public var contentLength: Int

    static let contentLengthKey = Array("CONTENT_LENGTH".utf8)

    /// Views into the vars block's bytes (no copy is made).

    /// Parses a whole vars block.
    public init(parsingVars block: ByteBuffer, maxBodyBytes: Int) throws(UWSGIError) {
        var block = block
        var variables: [Variable] = []
        var contentLength: ByteBufferView?
        variables.reserveCapacity(32)
        while block.readableBytes > 0 {
            let key = try Self.readSized(&block) { "key" }
            guard !key.isEmpty else { throw .emptyKey }
            let value = try Self.readSized(&block) { "value of \(String(decoding: key.prefix(64), as: UTF8.self))" }
            if key.elementsEqual(Self.contentLengthKey) {
                if let contentLength, !contentLength.elementsEqual(value) { throw .conflictingContentLength }
                contentLength = value
            }
            variables.append(Variable(key: key, value: value))
        }
        var length = 0
        if let text = contentLength, !text.isEmpty {
            guard text.count <= 18, text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .invalidContentLength
            }
            length = text.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(declared: length, limit: maxBodyBytes) }
        self.variables = variables
        self.contentLength = length
    }

    public init(variables: [Variable], contentLength: Int) {
        self.variables = variables
        self.contentLength = contentLength
    }

    /// A u16-LE size, then that many bytes, both checked against what remains.
    /// `field` names what is read, for the error only.
    private static func readSized(_ block: inout ByteBuffer, field: () -> String) throws(UWSGIError) -> ByteBufferView {
        guard let size = block.readInteger(endianness: .little, as: UInt16.self) else {
            throw .truncatedVar(field: "the size of the \(field())", declared: 2, available: block.readableBytes)
        }
        let declared = Int(size)
        guard declared <= block.readableBytes else {
            throw .truncatedVar(field: "the \(field())", declared: declared, available: block.readableBytes)
        }
        return block.readSlice(length: declared)!.readableBytesView
    }
}
