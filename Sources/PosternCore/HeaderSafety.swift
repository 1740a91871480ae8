/// Checks on response header fields, applied by every encoder before a byte is written.
///
/// A CR or LF in a value would let an application (or a CGI script fed with user input) split the
/// response and inject headers (CWE-113); other control characters confuse front-ends. RFC 9110
/// §5.1 and §5.5 give the grammar: names are tokens, values are visible characters, space and tab.
public enum HeaderSafety {
    /// RFC 9110 §5.6.2 `tchar`.
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(isTokenByte)
    }

    /// Visible characters, space, tab and obs-text; no CR, LF, NUL or other controls.
    public static func isValidValue(_ value: String) -> Bool {
        value.utf8.allSatisfy(isValueByte)
    }

    /// A byte a field value may hold (RFC 9110 §5.5: VCHAR, SP, HTAB, obs-text).
    public static func isValueByte(_ byte: UInt8) -> Bool {
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// Throws ``ResponseError`` for the first field (or reason phrase) that is unsafe to encode.
    public static func check(_ response: Response) throws(ResponseError) {
        guard (100...999).contains(response.status.code) else {
            throw ResponseError(.invalidStatus(response.status.code))
        }
        guard isValidValue(response.status.reasonPhrase) else {
            throw ResponseError(.invalidReasonPhrase)
        }
        for field in response.headers {
            guard isValidName(field.name) else { throw ResponseError(.invalidHeaderName(field.name)) }
            guard isValidValue(field.value) else { throw ResponseError(.invalidHeaderValue(name: field.name)) }
        }
    }
}

/// A response that cannot be sent as it is. The adapters send a plain 500 instead and log this.
public struct ResponseError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        case invalidStatus(Int)
        case invalidReasonPhrase
        case invalidHeaderName(String)
        case invalidHeaderValue(name: String)
    }

    public let reason: Reason

    public init(_ reason: Reason) { self.reason = reason }

    public var description: String {
        switch reason {
        case .invalidStatus(let code): return "response status \(code) is not a three-digit code"
        case .invalidReasonPhrase: return "response reason phrase contains a control character"
        case .invalidHeaderName(let name):
            return "response header name \(String(reflecting: name)) is not an RFC 9110 token"
        case .invalidHeaderValue(let name):
            return "response header \(name) has a CR, LF or other control character in its value"
        }
    }
}
