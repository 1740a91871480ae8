import NIOCore

/// Parses the head of a CGI-style response (RFC 3875 §6): what a CGI script prints, what a
/// FastCGI or SCGI application sends, and (with ``Mode/httpStatusLine``) a uwsgi or `nph-` reply.
///
/// ```
/// Status: 404 Not Found\r\n        <- optional; default 200, or 302 with a Location
/// Content-Type: text/html\r\n
/// \r\n                             <- LF alone is accepted too (§6.2: scripts often print \n)
/// body...
/// ```
/// A pure value: feed bytes as they come with ``feed(_:)``; it answers `.needMore` until the
/// blank line, then `.head` with any body bytes that followed. A head larger than the limit, a
/// line without a colon, a field name that is not a token or a value with control characters
/// is an error: a gateway must never forward a split header.
public struct CGIResponseHeadParser: Sendable {
    public enum Mode: Sendable { case cgi, httpStatusLine }

    public struct Head: Sendable, Equatable {
        public var status: ResponseStatus
        public var headers: ResponseHeaders
        /// Whether the head carried a `Status:` field (or a status line).
        public var hadExplicitStatus: Bool
    }

    public enum Step: Sendable {
        case needMore
        case head(Head, body: ByteBuffer)
    }

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case headTooLarge(limit: Int)
        case malformedLine(String)
        case invalidStatus(String)
        case unsafeField(String)
        case truncated

        public var description: String {
            switch self {
            case .headTooLarge(let limit): return "the response head exceeds \(limit) bytes"
            case .malformedLine(let line): return "malformed response header line \(String(reflecting: line))"
            case .invalidStatus(let value): return "invalid response status \(String(reflecting: value))"
            case .unsafeField(let name): return "response header \(String(reflecting: name)) has an invalid name or a control character"
            case .truncated: return "the response ended before its header block was complete"
            }
        }
    }

    public let mode: Mode
    public let maxHeadBytes: Int
    private var buffer = ByteBuffer()
    private var done = false

    public init(mode: Mode = .cgi, maxHeadBytes: Int = 64 * 1024) {
        self.mode = mode
        self.maxHeadBytes = maxHeadBytes
    }

    public mutating func feed(_ bytes: ByteBuffer) throws(ParseError) -> Step {
        precondition(!done, "CGIResponseHeadParser fed after the head was complete")
        if buffer.readableBytes == 0 {
            buffer = bytes  // the common case: the whole head in the first chunk, no copy
        } else {
            var bytes = bytes
            buffer.writeBuffer(&bytes)
        }
        guard let (headEnd, bodyStart) = Self.findBlankLine(in: buffer.readableBytesView) else {
            if buffer.readableBytes > maxHeadBytes { throw .headTooLarge(limit: maxHeadBytes) }
            return .needMore
        }
        guard headEnd <= maxHeadBytes else { throw .headTooLarge(limit: maxHeadBytes) }
        let headBytes = buffer.getSlice(at: buffer.readerIndex, length: headEnd)!
        let body = buffer.getSlice(at: buffer.readerIndex + bodyStart, length: buffer.readableBytes - bodyStart)!
        done = true
        return .head(try parseHead(headBytes), body: body)
    }

    /// The input ended: an error unless the head was complete.
    public func finish() throws(ParseError) {
        if !done { throw .truncated }
    }

    /// Offsets of the end of the head and the start of the body: the first empty line, ended by
    /// CRLF or LF.
    static func findBlankLine(in view: ByteBufferView) -> (Int, Int)? {
        var index = view.startIndex
        var lineStart = index
        while index < view.endIndex {
            if view[index] == UInt8(ascii: "\n") {
                var contentEnd = index
                if contentEnd > lineStart, view[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
                if contentEnd == lineStart {
                    return (lineStart - view.startIndex, index + 1 - view.startIndex)
                }
                lineStart = index + 1
            }
            index += 1
        }
        return nil
    }

    /// The fields, read as bytes where they lie: each line split at its first colon, the value
    /// trimmed of spaces and tabs, name and value checked byte by byte (``HeaderSafety``), and
    /// one `String` made for each.
    private func parseHead(_ head: ByteBuffer) throws(ParseError) -> Head {
        let view = head.readableBytesView
        var status: ResponseStatus?
        var headers = ResponseHeaders()
        var statusLinePending = mode == .httpStatusLine
        var lineStart = view.startIndex
        while lineStart < view.endIndex {
            var lineEnd = view[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? view.endIndex
            let next = lineEnd < view.endIndex ? lineEnd + 1 : lineEnd
            if lineEnd > lineStart, view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = view[lineStart..<lineEnd]
            lineStart = next
            if statusLinePending {
                statusLinePending = false
                status = try Self.parseStatusLine(String(decoding: line, as: UTF8.self))
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw .malformedLine(String(decoding: line, as: UTF8.self))
            }
            var valueStart = colon + 1
            while valueStart < lineEnd, Self.isBlank(view[valueStart]) { valueStart += 1 }
            var valueEnd = lineEnd
            while valueEnd > valueStart, Self.isBlank(view[valueEnd - 1]) { valueEnd -= 1 }
            let name = view[line.startIndex..<colon]
            let value = view[valueStart..<valueEnd]
            guard !name.isEmpty, name.allSatisfy(HeaderSafety.isTokenByte), value.allSatisfy(HeaderSafety.isValueByte) else {
                throw .unsafeField(String(decoding: name, as: UTF8.self))
            }
            if mode == .cgi, Self.isStatusName(name) {
                status = try Self.parseStatus(String(decoding: value, as: UTF8.self))
            } else {
                headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
            }
        }
        if statusLinePending { throw .invalidStatus("") }
        let explicit = status != nil
        let resolved = status ?? (headers.contains("Location") ? ResponseStatus(code: 302) : .ok)
        return Head(status: resolved, headers: headers, hadExplicitStatus: explicit)
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// `Status`, in any case (RFC 3875 §6.3.3).
    private static func isStatusName(_ name: ByteBufferView.SubSequence) -> Bool {
        name.count == 6 && zip(name, "status".utf8).allSatisfy { $0 | 0x20 == $1 }
    }

    /// `HTTP/1.1 404 Not Found` (uwsgi, `nph-` scripts) → a status.
    static func parseStatusLine(_ line: String) throws(ParseError) -> ResponseStatus {
        guard line.hasPrefix("HTTP/") else { throw .invalidStatus(line) }
        let parts = line.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { throw .invalidStatus(line) }
        return try parseStatus(String(parts[1]))
    }

    /// `404 Not Found` or `404` → a status; the code must be three digits.
    static func parseStatus(_ text: String) throws(ParseError) -> ResponseStatus {
        let parts = text.split(separator: " ", maxSplits: 1)
        guard let codeText = parts.first, codeText.count == 3, let code = Int(codeText), (100...999).contains(code) else {
            throw .invalidStatus(text)
        }
        let reason = parts.count > 1 ? String(parts[1]) : nil
        return ResponseStatus(code: code, reasonPhrase: reason)
    }
}
