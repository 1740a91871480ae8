#if canImport(Glibc)
import Glibc
#endif
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
    /// A name and its value: views into the netstring's bytes (no copy is made).
    public struct Header: Sendable, Hashable {
        public var name: ByteBufferView
        public var value: ByteBufferView

        public init(name: ByteBufferView, value: ByteBufferView) {
            self.name = name
            self.value = value
        }
    }

    /// The headers in wire order (CONTENT_LENGTH first).
    public var headers: [Header]
    /// CONTENT_LENGTH: the exact number of body bytes after the netstring.
    public var contentLength: Int

    static let contentLengthName = Array("CONTENT_LENGTH".utf8)
    static let scgiName = Array("SCGI".utf8)

    /// Parses the netstring content (without length, colon and comma).
    public init(parsing content: ByteBuffer, maxBodyBytes: Int) throws(SCGIError) {
        guard let last = content.readableBytesView.last else { throw .contentLengthNotFirst }
        guard last == 0 else { throw .unterminatedHeader }
        // Every string ends with NUL: find them all in one pass over the bytes.
        let ends = content.withUnsafeReadableBytes { raw -> [Int] in
            var ends: [Int] = []
            ends.reserveCapacity(64)
            var offset = 0
            while offset < raw.count, let found = memchr(raw.baseAddress! + offset, 0, raw.count - offset) {
                let end = raw.baseAddress!.distance(to: UnsafeRawPointer(found))
                ends.append(end)
                offset = end + 1
            }
            return ends
        }
        guard ends.count % 2 == 0 else { throw .oddStringCount(ends.count) }
        var headers: [Header] = []
        headers.reserveCapacity(ends.count / 2)
        var sawSCGI = false
        var start = 0
        var index = 0
        while index < ends.count {
            let nameEnd = ends[index]
            let valueEnd = ends[index + 1]
            let name = content.getSlice(at: content.readerIndex + start, length: nameEnd - start)!.readableBytesView
            let value = content.getSlice(at: content.readerIndex + nameEnd + 1, length: valueEnd - nameEnd - 1)!.readableBytesView
            start = valueEnd + 1
            index += 2
            guard !name.isEmpty else { throw .emptyHeaderName }
            let isContentLength = name.elementsEqual(Self.contentLengthName)
            if headers.isEmpty, !isContentLength { throw .contentLengthNotFirst }
            if isContentLength, !headers.isEmpty {
                throw .duplicateHeader("CONTENT_LENGTH")
            }
            if name.elementsEqual(Self.scgiName) {
                guard !sawSCGI else { throw .duplicateHeader("SCGI") }
                guard value.elementsEqual([UInt8(ascii: "1")]) else {
                    throw .unsupportedSCGIVersion(String(decoding: value, as: UTF8.self))
                }
                sawSCGI = true
            }
            headers.append(Header(name: name, value: value))
        }
        guard sawSCGI else { throw .missingSCGI }
        let lengthText = headers[0].value
        guard !lengthText.isEmpty, lengthText.count <= 18, lengthText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalidContentLength
        }
        let length = lengthText.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(declared: length, limit: maxBodyBytes) }
        self.headers = headers
        self.contentLength = length
    }

    public init(headers: [Header], contentLength: Int) {
        self.headers = headers
        self.contentLength = contentLength
    }
}
