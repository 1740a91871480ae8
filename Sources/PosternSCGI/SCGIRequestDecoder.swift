import NIOCore
import PosternCore
import PosternEngine

/// The server side of SCGI (Neil Schemenauer's protocol): decodes one request from a byte
/// stream into a head and body chunks. A pure value: no I/O, fed by
/// `ByteToMessageHandler` on a connection or by `NIOSingleStepByteToMessageProcessor` in tests.
///
/// ```
/// "70" ":" CONTENT_LENGTH\0 27\0 SCGI\0 1\0 REQUEST_METHOD\0 POST\0 ... "," <27 body bytes>
/// └┬─┘ └┬┘ └──────────────── netstring content: 70 bytes ─────────────┘ └┬┘ └─────┬─────┘
/// length colon                                                         comma   body
/// ```
/// Every length is checked before bytes are buffered for it: the netstring length must be
/// decimal digits without a leading zero, at most ``maxLengthDigits`` of them, and within
/// ``GatewayLimits/maxHeaderBytes`` (checked digit by digit, so a huge length is refused before
/// its colon); CONTENT_LENGTH within ``GatewayLimits/maxBodyBytes``. A connection that closes
/// before CONTENT_LENGTH bytes of body is an error (``SCGIError/truncatedBody(missing:)``).
/// Bytes after the body are discarded: SCGI carries one request per connection.
public struct SCGIRequestDecoder: CloseDelimitedDecoder {
    public typealias InboundOut = RequestPart<SCGIRequestHead>

    /// Enough digits for any length up to 9,999,999,999: far above any sane header limit.
    public static let maxLengthDigits = 10

    enum State: Sendable, Hashable {
        case length(value: Int, digits: Int)
        case netstring(length: Int)
        case afterHead(CloseDelimitedBody)
    }

    public let maxHeaderBytes: Int
    public let maxBodyBytes: Int
    private(set) var state: State = .length(value: 0, digits: 0)

    public init(limits: GatewayLimits = GatewayLimits()) {
        self.maxHeaderBytes = limits.maxHeaderBytes
        self.maxBodyBytes = limits.maxBodyBytes
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> InboundOut? {
        if let part = try step(&buffer) { return part }
        switch state {
        case .length(_, 0):
            return nil  // closed before sending anything: not a request
        case .length, .netstring:
            throw SCGIError.truncatedHead
        case .afterHead(let body):
            guard body.missing == 0 else { throw SCGIError.truncatedBody(missing: body.missing) }
            return nil
        }
    }

    /// One step: returns a part, or `nil` when more bytes are needed.
    public mutating func step(_ buffer: inout ByteBuffer) throws(SCGIError) -> InboundOut? {
        while true {
            switch state {
            case .length(var value, var digits):
                guard let byte = buffer.readInteger(as: UInt8.self) else { return nil }
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"):
                    if digits == 1 && value == 0 { throw .leadingZero }
                    guard digits < Self.maxLengthDigits else { throw .tooManyLengthDigits(max: Self.maxLengthDigits) }
                    value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    digits += 1
                    guard value <= maxHeaderBytes else { throw .headTooLarge(declared: value, limit: maxHeaderBytes) }
                    state = .length(value: value, digits: digits)
                case UInt8(ascii: ":"):
                    guard digits > 0 else { throw .emptyLength }
                    state = .netstring(length: value)
                default:
                    throw .invalidLengthByte(byte)
                }
            case .netstring(let length):
                // The content and its comma; length is already within maxHeaderBytes.
                guard buffer.readableBytes > length else { return nil }
                let content = buffer.readSlice(length: length)!
                let comma = buffer.readInteger(as: UInt8.self)!
                guard comma == UInt8(ascii: ",") else { throw .missingComma(found: comma) }
                let head = try SCGIRequestHead(parsing: content, maxBodyBytes: maxBodyBytes)
                state = .afterHead(CloseDelimitedBody(contentLength: head.contentLength))
                return .head(head, bodyLength: head.contentLength)
            case .afterHead(var body):
                defer { state = .afterHead(body) }
                return body.step(&buffer)
            }
        }
    }
}
