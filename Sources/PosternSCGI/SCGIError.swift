/// Why an SCGI request was refused: each case names the rule of the SCGI protocol
/// (Neil Schemenauer, "SCGI: A Simple Common Gateway Interface alternative") it breaks.
public struct SCGIError: Error, Sendable, Hashable, CustomStringConvertible {
    enum Base: Sendable, Hashable {
        case invalidLengthByte(UInt8)
        case emptyLength
        case leadingZero
        case tooManyLengthDigits(max: Int)
        case headTooLarge(declared: Int, limit: Int)
        case missingComma(found: UInt8)
        case unterminatedHeader
        case oddStringCount(Int)
        case emptyHeaderName
        case contentLengthNotFirst
        case invalidContentLength
        case duplicateHeader(String)
        case missingSCGI
        case unsupportedSCGIVersion(String)
        case bodyTooLarge(declared: Int, limit: Int)
        case truncatedHead
        case truncatedBody(missing: Int)
        case headerNameNUL
    }

    let base: Base

    public static func invalidLengthByte(_ byte: UInt8) -> SCGIError { .init(base: .invalidLengthByte(byte)) }
    public static let emptyLength = SCGIError(base: .emptyLength)
    public static let leadingZero = SCGIError(base: .leadingZero)
    public static func tooManyLengthDigits(max: Int) -> SCGIError { .init(base: .tooManyLengthDigits(max: max)) }
    public static func headTooLarge(declared: Int, limit: Int) -> SCGIError { .init(base: .headTooLarge(declared: declared, limit: limit)) }
    public static func missingComma(found: UInt8) -> SCGIError { .init(base: .missingComma(found: found)) }
    public static let unterminatedHeader = SCGIError(base: .unterminatedHeader)
    public static func oddStringCount(_ count: Int) -> SCGIError { .init(base: .oddStringCount(count)) }
    public static let emptyHeaderName = SCGIError(base: .emptyHeaderName)
    public static let contentLengthNotFirst = SCGIError(base: .contentLengthNotFirst)
    public static let invalidContentLength = SCGIError(base: .invalidContentLength)
    public static func duplicateHeader(_ name: String) -> SCGIError { .init(base: .duplicateHeader(name)) }
    public static let missingSCGI = SCGIError(base: .missingSCGI)
    public static func unsupportedSCGIVersion(_ value: String) -> SCGIError { .init(base: .unsupportedSCGIVersion(value)) }
    public static func bodyTooLarge(declared: Int, limit: Int) -> SCGIError { .init(base: .bodyTooLarge(declared: declared, limit: limit)) }
    public static let truncatedHead = SCGIError(base: .truncatedHead)
    public static func truncatedBody(missing: Int) -> SCGIError { .init(base: .truncatedBody(missing: missing)) }
    /// Client side: a name or value holds a NUL, which SCGI cannot carry.
    public static let headerNameNUL = SCGIError(base: .headerNameNUL)

    public var description: String {
        switch base {
        case .invalidLengthByte(let byte):
            return "netstring length: byte 0x\(String(byte, radix: 16)) is not a decimal digit or ':'"
        case .emptyLength: return "netstring length: no digits before ':'"
        case .leadingZero: return "netstring length: leading zero (a netstring length has none)"
        case .tooManyLengthDigits(let max): return "netstring length: more than \(max) digits"
        case .headTooLarge(let declared, let limit):
            return "netstring length \(declared) exceeds the header limit of \(limit) bytes (--max-header-bytes)"
        case .missingComma(let found):
            return "netstring: expected ',' after the headers, found byte 0x\(String(found, radix: 16))"
        case .unterminatedHeader: return "SCGI headers: the last string is not terminated by NUL"
        case .oddStringCount(let count): return "SCGI headers: \(count) NUL-terminated strings, not name/value pairs"
        case .emptyHeaderName: return "SCGI headers: empty header name"
        case .contentLengthNotFirst: return "SCGI headers: the first header must be CONTENT_LENGTH"
        case .invalidContentLength: return "SCGI headers: CONTENT_LENGTH is not a decimal number"
        case .duplicateHeader(let name): return "SCGI headers: \(name) appears twice"
        case .missingSCGI: return "SCGI headers: no SCGI header (it must be present with value 1)"
        case .unsupportedSCGIVersion(let value): return "SCGI headers: SCGI is \(String(reflecting: value)), not 1"
        case .bodyTooLarge(let declared, let limit):
            return "CONTENT_LENGTH \(declared) exceeds the body limit of \(limit) bytes (--max-body-bytes)"
        case .truncatedHead: return "the connection closed inside the netstring"
        case .truncatedBody(let missing): return "the connection closed \(missing) bytes short of CONTENT_LENGTH"
        case .headerNameNUL: return "an SCGI header name or value contains NUL"
        }
    }
}
