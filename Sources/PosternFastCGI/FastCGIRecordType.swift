/// The `type` byte of a FastCGI record (FastCGI 1.0 §8, "Types and constants").
///
/// A struct over the raw byte rather than an enum: an unknown type is not a decoding error but a
/// management record to answer with FCGI_UNKNOWN_TYPE (§4.2).
public struct FastCGIRecordType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let beginRequest = FastCGIRecordType(rawValue: 1)
    public static let abortRequest = FastCGIRecordType(rawValue: 2)
    public static let endRequest = FastCGIRecordType(rawValue: 3)
    public static let params = FastCGIRecordType(rawValue: 4)
    public static let stdin = FastCGIRecordType(rawValue: 5)
    public static let stdout = FastCGIRecordType(rawValue: 6)
    public static let stderr = FastCGIRecordType(rawValue: 7)
    public static let data = FastCGIRecordType(rawValue: 8)
    public static let getValues = FastCGIRecordType(rawValue: 9)
    public static let getValuesResult = FastCGIRecordType(rawValue: 10)
    public static let unknownType = FastCGIRecordType(rawValue: 11)

    public var description: String {
        let names = [
            "", "BEGIN_REQUEST", "ABORT_REQUEST", "END_REQUEST", "PARAMS", "STDIN", "STDOUT", "STDERR", "DATA",
            "GET_VALUES", "GET_VALUES_RESULT", "UNKNOWN_TYPE",
        ]
        return (1...11).contains(rawValue) ? "FCGI_" + names[Int(rawValue)] : "type \(rawValue)"
    }
}

/// FCGI_BEGIN_REQUEST's `role` (§5.1–5.3).
public struct FastCGIRole: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let responder = FastCGIRole(rawValue: 1)
    public static let authorizer = FastCGIRole(rawValue: 2)
    public static let filter = FastCGIRole(rawValue: 3)

    /// The role's name as `FCGI_ROLE` carries it in the environ.
    public var description: String {
        switch self {
        case .responder: return "RESPONDER"
        case .authorizer: return "AUTHORIZER"
        case .filter: return "FILTER"
        default: return "role \(rawValue)"
        }
    }
}

/// FCGI_END_REQUEST's `protocolStatus` (§5.5).
public struct FastCGIProtocolStatus: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let requestComplete = FastCGIProtocolStatus(rawValue: 0)
    public static let cantMultiplexConnection = FastCGIProtocolStatus(rawValue: 1)
    public static let overloaded = FastCGIProtocolStatus(rawValue: 2)
    public static let unknownRole = FastCGIProtocolStatus(rawValue: 3)

    public var description: String {
        switch rawValue {
        case 0: return "FCGI_REQUEST_COMPLETE"
        case 1: return "FCGI_CANT_MPX_CONN"
        case 2: return "FCGI_OVERLOADED"
        case 3: return "FCGI_UNKNOWN_ROLE"
        default: return "protocol status \(rawValue)"
        }
    }
}
