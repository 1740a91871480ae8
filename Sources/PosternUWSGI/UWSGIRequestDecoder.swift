import NIOCore
import PosternCore
import PosternEngine

/// The server side of the uwsgi protocol (uWSGI docs, "The uwsgi Protocol"): decodes one
/// request into a head and body chunks. A pure value: no I/O, fed by
/// `ByteToMessageHandler` on a connection or by `NIOSingleStepByteToMessageProcessor` in tests.
///
/// ```
///  0           1           2           3           4
/// +-----------+-----------+-----------+-----------+----------------------+-----------------+
/// | modifier1 | datasize (u16 LITTLE-endian)      | modifier2 | vars (datasize bytes) | body (CONTENT_LENGTH)
/// +-----------+-----------+-----------+-----------+----------------------+-----------------+
/// ```
/// Only modifier1 0 / modifier2 0 (a WSGI-style request with CGI vars, what nginx `uwsgi_pass`
/// and mod_proxy_uwsgi send) is served; any other modifier is refused before reading further.
/// datasize is checked against ``GatewayLimits/maxUWSGIVarsBytes`` before the block is
/// buffered; CONTENT_LENGTH against ``GatewayLimits/maxBodyBytes``. A connection that closes
/// before the end of the body is an error. Bytes after the body are discarded.
public struct UWSGIRequestDecoder: CloseDelimitedDecoder {
    public typealias InboundOut = RequestPart<UWSGIRequestHead>

    enum State: Sendable, Hashable {
        case header
        case vars(size: Int)
        case afterHead(CloseDelimitedBody)
    }

    public let maxVarsBytes: Int
    public let maxBodyBytes: Int
    private(set) var state: State = .header

    public init(limits: GatewayLimits = GatewayLimits()) {
        self.maxVarsBytes = limits.maxUWSGIVarsBytes
        self.maxBodyBytes = limits.maxBodyBytes
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> InboundOut? {
        if let part = try step(&buffer) { return part }
        switch state {
        case .header:
            if buffer.readableBytes == 0 { return nil }  // closed before sending anything
            throw UWSGIError.truncatedHeader
        case .vars(let size):
            throw UWSGIError.truncatedVars(missing: size - buffer.readableBytes)
        case .afterHead(let body):
            guard body.missing == 0 else { throw UWSGIError.truncatedBody(missing: body.missing) }
            return nil
        }
    }

    /// One step: returns a part, or `nil` when more bytes are needed.
    public mutating func step(_ buffer: inout ByteBuffer) throws(UWSGIError) -> InboundOut? {
        while true {
            switch state {
            case .header:
                guard buffer.readableBytes >= 4 else { return nil }
                let modifier1 = buffer.readInteger(as: UInt8.self)!
                let size = Int(buffer.readInteger(endianness: .little, as: UInt16.self)!)
                let modifier2 = buffer.readInteger(as: UInt8.self)!
                guard modifier1 == 0 else { throw .unsupportedModifier1(modifier1) }
                guard modifier2 == 0 else { throw .unsupportedModifier2(modifier1: modifier1, modifier2: modifier2) }
                guard size <= maxVarsBytes else { throw .varsTooLarge(declared: size, limit: maxVarsBytes) }
                state = .vars(size: size)
            case .vars(let size):
                guard buffer.readableBytes >= size else { return nil }
                let block = buffer.readSlice(length: size)!
                let head = try UWSGIRequestHead(parsingVars: block, maxBodyBytes: maxBodyBytes)
                state = .afterHead(CloseDelimitedBody(contentLength: head.contentLength))
                return .head(head, bodyLength: head.contentLength)
            case .afterHead(var body):
                defer { state = .afterHead(body) }
                return body.step(&buffer)
            }
        }
    }
}
