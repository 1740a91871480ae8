import PosternCore

/// The request-target of an HTTP/1.1 request line, split as CGI wants it (RFC 9112 §3.2,
/// RFC 3875 §4.1.5 and §4.1.7): the path percent-decoded into PATH_INFO, the query kept raw.
///
/// A pure value: origin-form (`/a%20b?x=1`), absolute-form (`http://host/a`) and asterisk-form
/// (`*`, OPTIONS only) are accepted; anything else, an invalid escape, or an encoded NUL
/// (it cannot reach a CGI environment) is refused.
public struct HTTPTarget: Sendable, Hashable {
    /// The decoded path, as bytes (it need not be UTF-8).
    public var decodedPath: [UInt8]
    /// The raw query string, without `?`.
    public var query: String

    public init?(parsing target: String) {
        var rest = Substring(target)
        if rest == "*" {
            decodedPath = []
            query = ""
            return
        }
        if rest.hasPrefix("http://") || rest.hasPrefix("https://") {
            rest = rest.drop(while: { $0 != ":" }).dropFirst(3)
            rest = rest.drop(while: { $0 != "/" && $0 != "?" })
            if rest.isEmpty || rest.first == "?" { rest = "/" + rest }
        }
        guard rest.first == "/" else { return nil }
        let pathPart: Substring
        if let question = rest.firstIndex(of: "?") {
            pathPart = rest[..<question]
            query = String(rest[rest.index(after: question)...])
        } else {
            pathPart = rest
            query = ""
        }
        guard let decoded = Self.percentDecode(pathPart.utf8) else { return nil }
        decodedPath = decoded
    }

    static func percentDecode(_ bytes: Substring.UTF8View) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexDigitValue), let low = iterator.next().flatMap(hexDigitValue) else { return nil }
                let value = high << 4 | low
                guard value != 0 else { return nil }
                out.append(value)
            } else {
                out.append(byte)
            }
        }
        return out
    }
}
