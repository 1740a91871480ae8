import NIOCore

/// The body of FCGI_BEGIN_REQUEST (FastCGI 1.0 §5.1).
///
/// ```
///  0        1        2        3        4        5        6        7
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// | role (BE)       | flags  |             reserved[5]                    |
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// ```
/// flags bit 0 is FCGI_KEEP_CONN: when clear, the application closes the connection after
/// its END_REQUEST.
public struct FastCGIBeginRequest: Sendable, Hashable {
    public var role: FastCGIRole
    public var keepConnection: Bool

    public init(role: FastCGIRole, keepConnection: Bool) {
        self.role = role
        self.keepConnection = keepConnection
    }

    public init(parsing content: ByteBuffer) throws(FastCGIProtocolError) {
        guard content.readableBytes == 8,
            let role = content.getInteger(at: content.readerIndex, as: UInt16.self),
            let flags = content.getInteger(at: content.readerIndex + 2, as: UInt8.self)
        else { throw .badBodyLength(.beginRequest, content.readableBytes) }
        self.role = FastCGIRole(rawValue: role)
        self.keepConnection = flags & 1 != 0
    }
}

/// The body of FCGI_END_REQUEST (FastCGI 1.0 §5.5).
///
/// ```
///  0        1        2        3        4        5        6        7
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// |            appStatus (BE)         |protoSt |      reserved[3]         |
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// ```
public struct FastCGIEndRequest: Sendable, Hashable {
    public var appStatus: UInt32
    public var protocolStatus: FastCGIProtocolStatus

    public init(appStatus: UInt32, protocolStatus: FastCGIProtocolStatus) {
        self.appStatus = appStatus
        self.protocolStatus = protocolStatus
    }

    public init(parsing content: ByteBuffer) throws(FastCGIProtocolError) {
        guard content.readableBytes == 8,
            let status = content.getInteger(at: content.readerIndex, as: UInt32.self),
            let protocolStatus = content.getInteger(at: content.readerIndex + 4, as: UInt8.self)
        else { throw .badBodyLength(.endRequest, content.readableBytes) }
        self.appStatus = status
        self.protocolStatus = FastCGIProtocolStatus(rawValue: protocolStatus)
    }
}
