import NIOCore

#if canImport(Glibc)
import Glibc
#endif

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

    /// The netstring's content as received: the checked NUL-terminated strings.
    public let content: ByteBuffer
    /// CONTENT_LENGTH: the exact number of body bytes after the netstring.
    public let contentLength: Int

    static let contentLengthName = Array("CONTENT_LENGTH".utf8)
    static let scgiName = Array("SCGI".utf8)

    /// Parses the netstring content (without length, colon and comma). One pass over the bytes,
    /// nothing allocated: the head keeps the content, and ``forEachHeader(_:)`` walks it again.
    public init(parsing content: ByteBuffer, maxBodyBytes: Int) throws(SCGIError) {
        let length = try content.withUnsafeReadableBytes { raw throws(SCGIError) -> Int in
            guard let last = raw.last else { throw .contentLengthNotFirst }
            guard last == 0 else { throw .unterminatedHeader }
            var strings = 0
            var lengthText: UnsafeRawBufferPointer?
            var sawSCGI = false
            var pendingName: UnsafeRawBufferPointer?
            try Self.walk(raw) { (string: UnsafeRawBufferPointer) throws(SCGIError) in
                strings += 1
                guard let name = pendingName else {
                    pendingName = string
                    return
                }
                pendingName = nil
                let value = string
                guard !name.isEmpty else { throw .emptyHeaderName }
                let isContentLength = name.elementsEqual(Self.contentLengthName)
                if strings == 2, !isContentLength { throw .contentLengthNotFirst }
                if isContentLength {
                    guard strings == 2 else { throw .duplicateHeader("CONTENT_LENGTH") }
                    lengthText = value
                }
                if name.elementsEqual(Self.scgiName) {
                    guard !sawSCGI else { throw .duplicateHeader("SCGI") }
                    guard value.count == 1, value[0] == UInt8(ascii: "1") else {
                        throw .unsupportedSCGIVersion(String(decoding: value, as: UTF8.self))
                    }
                    sawSCGI = true
                }
            }
            guard strings % 2 == 0 else { throw .oddStringCount(strings) }
            guard sawSCGI, let lengthText else { throw .missingSCGI }
            guard !lengthText.isEmpty, lengthText.count <= 18, lengthText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .invalidContentLength
            }
            return lengthText.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(declared: length, limit: maxBodyBytes) }
        self.content = content
        self.contentLength = length
    }

    /// Calls `body` with each name and value in wire order (CONTENT_LENGTH first), as bytes in
    /// the content; valid only during the call.
    public func forEachHeader(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Void) {
        content.withUnsafeReadableBytes { raw in
            var name: UnsafeRawBufferPointer?
            Self.walk(raw) { (string: UnsafeRawBufferPointer) in
                if let pending = name {
                    body(pending.assumingMemoryBound(to: UInt8.self), string.assumingMemoryBound(to: UInt8.self))
                    name = nil
                } else {
                    name = string
                }
            }
        }
    }

    /// The headers in wire order (CONTENT_LENGTH first), as views into the content.
    public var headers: [Header] {
        var headers: [Header] = []
        content.withUnsafeReadableBytes { raw in
            var name: Range<Int>?
            Self.walk(raw) { (string: UnsafeRawBufferPointer) in
                let start = raw.baseAddress!.distance(to: string.baseAddress!)
                let current = start..<(start + string.count)
                if let pending = name {
                    headers.append(
                        Header(
                            name: content.getSlice(at: content.readerIndex + pending.lowerBound, length: pending.count)!.readableBytesView,
                            value: content.getSlice(at: content.readerIndex + current.lowerBound, length: current.count)!.readableBytesView))
                    name = nil
                } else {
                    name = current
                }
            }
        }
        return headers
    }

    /// Each NUL-terminated string of `raw` (which ends with a NUL), without its NUL.
    private static func walk<Failure: Error>(_ raw: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Void) throws(Failure) {
        guard let base = raw.baseAddress else { return }
        var offset = 0
        while offset < raw.count, let found = memchr(base + offset, 0, raw.count - offset) {
            let end = base.distance(to: UnsafeRawPointer(found))
            try body(UnsafeRawBufferPointer(start: base + offset, count: end - offset))
            offset = end + 1
        }
    }
}
