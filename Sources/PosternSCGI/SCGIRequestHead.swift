import NIOCore

/// The headers of an SCGI request: the content of its netstring, split and checked.
///
/// SCGI spec, "headers": NUL-terminated name/value strings; the first is CONTENT_LENGTH and
/// `SCGI` must be `1`:
/// ```
/// "CONTENT_LENGTH" 00 "27" 00 "SCGI" 00 "1" 00 "REQUEST_METHOD" 00 "POST" 00 ...
/// ```
/// Departure from the spec: it forbids duplicate names, but nginx forwards a repeated request
/// header (two `Cookie:` lines) as two `HTTP_COOKIE` headers, so only CONTENT_LENGTH and SCGI
/// (which frame the request) are refused when repeated; the normalizer keeps the last of others.
public struct SCGIRequestHead: Sendable, Hashable {
    public struct Header: Sendable, Hashable {
        public var name: [UInt8]
        public var value: [UInt8]
    }

    /// The headers in wire order (CONTENT_LENGTH first).
    public var headers: [Header]
    /// CONTENT_LENGTH: the exact number of body bytes after the netstring.
    public var contentLength: Int

    static let contentLengthName = Array("CONTENT_LENGTH".utf8)
    static let scgiName = Array("SCGI".utf8)

    /// Parses the netstring content (without length, colon and comma).
    public init(parsing content: ByteBuffer, maxBodyBytes: Int) throws(SCGIError) {
        let view = content.readableBytesView
        guard let last = view.last else { throw .contentLengthNotFirst }
        guard last == 0 else { throw .unterminatedHeader }
        // Every string ends with NUL, so the split has one empty piece after the last NUL.
        let strings = view.dropLast().split(separator: 0, omittingEmptySubsequences: false)
        guard strings.count % 2 == 0 else { throw .oddStringCount(strings.count) }
        var headers: [Header] = []
        headers.reserveCapacity(strings.count / 2)
        var sawSCGI = false
        var index = 0
        while index < strings.count {
            let name = Array(strings[index])
            let value = Array(strings[index + 1])
            index += 2
            guard !name.isEmpty else { throw .emptyHeaderName }
            if headers.isEmpty, name != Self.contentLengthName { throw .contentLengthNotFirst }
            if name == Self.contentLengthName, !headers.isEmpty {
                throw .duplicateHeader("CONTENT_LENGTH")
            }
            if name == Self.scgiName {
                guard !sawSCGI else { throw .duplicateHeader("SCGI") }
                guard value == [UInt8(ascii: "1")] else {
                    throw .unsupportedSCGIVersion(String(decoding: value, as: UTF8.self))
                }
                sawSCGI = true
            }
            headers.append(Header(name: name, value: value))
        }
        guard sawSCGI else { throw .missingSCGI }
        let lengthText = headers[0].value
        guard !lengthText.isEmpty, lengthText.count <= 18, lengthText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let length = Int(String(decoding: lengthText, as: UTF8.self))
        else { throw .invalidContentLength }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(declared: length, limit: maxBodyBytes) }
        self.headers = headers
        self.contentLength = length
    }

    public init(headers: [Header], contentLength: Int) {
        self.headers = headers
        self.contentLength = contentLength
    }
}
