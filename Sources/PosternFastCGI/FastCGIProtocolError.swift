/// A rule of FastCGI 1.0 the peer broke; the connection that carried it is closed, no other.
public enum FastCGIProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// §3.3: `version` must be FCGI_VERSION_1.
    case unsupportedVersion(UInt8)
    /// The connection closed in the middle of a record.
    case truncatedRecord(bytes: Int)
    /// §5.1: FCGI_BEGIN_REQUEST's body is 8 bytes; §5.5: FCGI_END_REQUEST's too.
    case badBodyLength(FastCGIRecordType, Int)
    /// §3.3: a BEGIN_REQUEST for a request id that is already active.
    case duplicateRequestID(UInt16)
    /// §3.3: only BEGIN_REQUEST and management types may use request id 0 semantics.
    case managementTypeOnRequest(FastCGIRecordType, UInt16)
    /// A stream record (STDIN, DATA) before the PARAMS stream ended, or a PARAMS record after it.
    case outOfOrder(FastCGIRecordType, UInt16)
    /// §3.4: a name-value pair runs past the end of its stream.
    case truncatedNameValuePair
    /// The PARAMS stream is over the configured byte limit (GatewayLimits.maxHeaderBytes).
    case paramsTooLarge(limit: Int)
    /// The PARAMS stream came in more records than the configured limit.
    case tooManyParamsRecords(limit: Int)
    /// A name-value pair's 4-byte length exceeds the configured limit (libfcgi CVE-2025-23016).
    case nameValueLengthTooLarge(Int, limit: Int)
    /// A record type that only the application sends (STDOUT, STDERR, END_REQUEST, GET_VALUES_RESULT)
    /// arrived at the application; or the reverse at the client.
    case unexpectedType(FastCGIRecordType)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version): return "FastCGI version \(version) is not 1 (§3.3)"
        case .truncatedRecord(let bytes): return "the connection closed inside a record (\(bytes) bytes pending)"
        case .badBodyLength(let type, let length): return "\(type) body is \(length) bytes, not 8 (§5)"
        case .duplicateRequestID(let id): return "BEGIN_REQUEST for request \(id), which is already active (§3.3)"
        case .managementTypeOnRequest(let type, let id): return "\(type) with request id \(id); management records use id 0 (§3.3)"
        case .outOfOrder(let type, let id): return "\(type) for request \(id) out of order (PARAMS must end first)"
        case .truncatedNameValuePair: return "a name-value pair runs past the end of the PARAMS stream (§3.4)"
        case .paramsTooLarge(let limit): return "the PARAMS stream exceeds \(limit) bytes"
        case .tooManyParamsRecords(let limit): return "the PARAMS stream exceeds \(limit) records"
        case .nameValueLengthTooLarge(let length, let limit): return "a name-value pair claims \(length) bytes, over the limit of \(limit) (§3.4)"
        case .unexpectedType(let type): return "\(type) is not sent in this direction"
        }
    }
}
