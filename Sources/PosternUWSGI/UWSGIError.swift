/// Why a uwsgi packet was refused: each case names the rule of the uwsgi protocol
/// (uWSGI documentation, "The uwsgi Protocol") or the limit it breaks.
public struct UWSGIError: Error, Sendable, Hashable, CustomStringConvertible {
    enum Base: Sendable, Hashable {
        case unsupportedModifier1(UInt8)
        case unsupportedModifier2(modifier1: UInt8, modifier2: UInt8)
        case varsTooLarge(declared: Int, limit: Int)
        case truncatedVar(field: String, declared: Int, available: Int)
        case emptyKey
        case invalidContentLength
        case conflictingContentLength
        case bodyTooLarge(declared: Int, limit: Int)
        case truncatedHeader
        case truncatedVars(missing: Int)
        case truncatedBody(missing: Int)
        case fieldTooLarge(field: String, size: Int)
    }

    let base: Base

    public static func unsupportedModifier1(_ value: UInt8) -> UWSGIError { .init(base: .unsupportedModifier1(value)) }
    public static func unsupportedModifier2(modifier1: UInt8, modifier2: UInt8) -> UWSGIError {
        .init(base: .unsupportedModifier2(modifier1: modifier1, modifier2: modifier2))
    }
    public static func varsTooLarge(declared: Int, limit: Int) -> UWSGIError { .init(base: .varsTooLarge(declared: declared, limit: limit)) }
    public static func truncatedVar(field: String, declared: Int, available: Int) -> UWSGIError {
        .init(base: .truncatedVar(field: field, declared: declared, available: available))
    }
    public static let emptyKey = UWSGIError(base: .emptyKey)
    public static let invalidContentLength = UWSGIError(base: .invalidContentLength)
    public static let conflictingContentLength = UWSGIError(base: .conflictingContentLength)
    public static func bodyTooLarge(declared: Int, limit: Int) -> UWSGIError { .init(base: .bodyTooLarge(declared: declared, limit: limit)) }
    public static let truncatedHeader = UWSGIError(base: .truncatedHeader)
    public static func truncatedVars(missing: Int) -> UWSGIError { .init(base: .truncatedVars(missing: missing)) }
    public static func truncatedBody(missing: Int) -> UWSGIError { .init(base: .truncatedBody(missing: missing)) }
    /// Client side: a key, value or the whole vars block does not fit its 16-bit size field.
    public static func fieldTooLarge(field: String, size: Int) -> UWSGIError { .init(base: .fieldTooLarge(field: field, size: size)) }

    public var description: String {
        switch base {
        case .unsupportedModifier1(let value):
            return "uwsgi header: modifier1 \(value) is not supported (only 0, a WSGI-style request with CGI vars)"
        case .unsupportedModifier2(let modifier1, let modifier2):
            return "uwsgi header: modifier2 \(modifier2) is not supported with modifier1 \(modifier1) (only 0)"
        case .varsTooLarge(let declared, let limit):
            return "uwsgi header: vars block of \(declared) bytes exceeds the limit of \(limit) (--uwsgi-max-vars)"
        case .truncatedVar(let field, let declared, let available):
            return "uwsgi vars: \(field) declares \(declared) bytes but only \(available) remain in the block"
        case .emptyKey: return "uwsgi vars: empty key"
        case .invalidContentLength: return "uwsgi vars: CONTENT_LENGTH is not a decimal number"
        case .conflictingContentLength: return "uwsgi vars: CONTENT_LENGTH appears twice with different values"
        case .bodyTooLarge(let declared, let limit):
            return "CONTENT_LENGTH \(declared) exceeds the body limit of \(limit) bytes (--max-body-bytes)"
        case .truncatedHeader: return "the connection closed inside the 4-byte uwsgi header"
        case .truncatedVars(let missing): return "the connection closed \(missing) bytes short of the vars block"
        case .truncatedBody(let missing): return "the connection closed \(missing) bytes short of CONTENT_LENGTH"
        case .fieldTooLarge(let field, let size): return "uwsgi: \(field) of \(size) bytes does not fit a 16-bit size (max 65535)"
        }
    }
}
