import NIOCore

/// One FastCGI record: header fields and content, padding already stripped (FastCGI 1.0 §3.3).
///
/// ```
///  0         1        2        3        4        5        6        7
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// |version | type   | requestId (BE)  | contentLength   |padding |reserved|
/// +--------+--------+--------+--------+--------+--------+--------+--------+
/// | contentData[contentLength] ...     paddingData[paddingLength] ...    |
/// ```
/// `version` is always 1 (FCGI_VERSION_1). Request id 0 is the management id (§3.3).
public struct FastCGIRecord: Sendable, Equatable {
    public var type: FastCGIRecordType
    public var requestID: UInt16
    /// The content, at most 65535 bytes. A slice of the read buffer: no copy.
    public var content: ByteBuffer

    public init(type: FastCGIRecordType, requestID: UInt16, content: ByteBuffer = ByteBuffer()) {
        self.type = type
        self.requestID = requestID
        self.content = content
    }

    /// FCGI_VERSION_1.
    public static let version: UInt8 = 1
    /// The fixed header length, FCGI_HEADER_LEN.
    public static let headerLength = 8
    /// The largest content one record can carry (a u16).
    public static let maxContentLength = 65535
    /// The management request id, FCGI_NULL_REQUEST_ID.
    public static let managementID: UInt16 = 0

    /// Whether this is a management record (§3.3: request id 0).
    public var isManagement: Bool { requestID == Self.managementID }
}

extension FastCGIRecord {
    /// Padding that brings `contentLength` to a multiple of 8 (§3.3 recommends 8-byte alignment).
    @inlinable
    public static func paddingLength(for contentLength: Int) -> Int {
        (8 - (contentLength & 7)) & 7
    }
}
