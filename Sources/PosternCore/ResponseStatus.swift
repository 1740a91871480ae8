/// An HTTP status: a three-digit code and its reason phrase (RFC 9110 §15).
public struct ResponseStatus: Sendable, Hashable, CustomStringConvertible {
    public var code: Int
    public var reasonPhrase: String

    public init(code: Int, reasonPhrase: String? = nil) {
        self.code = code
        self.reasonPhrase = reasonPhrase ?? ResponseStatus.standardReasonPhrase(for: code)
    }

    /// `200 OK`, the form of a CGI `Status:` header value and of an HTTP status line's tail.
    public var description: String { "\(code) \(reasonPhrase)" }

    public static let ok = ResponseStatus(code: 200)
    public static let noContent = ResponseStatus(code: 204)
    public static let notModified = ResponseStatus(code: 304)
    public static let badRequest = ResponseStatus(code: 400)
    public static let unauthorized = ResponseStatus(code: 401)
    public static let forbidden = ResponseStatus(code: 403)
    public static let notFound = ResponseStatus(code: 404)
    public static let methodNotAllowed = ResponseStatus(code: 405)
    public static let payloadTooLarge = ResponseStatus(code: 413)
    public static let internalServerError = ResponseStatus(code: 500)
    public static let badGateway = ResponseStatus(code: 502)
    public static let serviceUnavailable = ResponseStatus(code: 503)
    public static let gatewayTimeout = ResponseStatus(code: 504)

    /// The reason phrase RFC 9110 gives a code, or a generic one by class.
    public static func standardReasonPhrase(for code: Int) -> String {
        switch code {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default:
            switch code {
            case 100..<200: return "Informational"
            case 200..<300: return "Success"
            case 300..<400: return "Redirection"
            case 400..<500: return "Client Error"
            default: return "Server Error"
            }
        }
    }
}
