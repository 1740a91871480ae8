import NIOCore

/// What an application returns: a status, header fields and a body (bytes or a stream).
public struct Response: Sendable {
    public var status: ResponseStatus
    public var headers: ResponseHeaders
    public var body: ResponseBody

    public init(status: ResponseStatus = .ok, headers: ResponseHeaders = [:], body: ResponseBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A `text/plain; charset=utf-8` response.
    public static func text(_ text: String, status: ResponseStatus = .ok) -> Response {
        Response(status: status, headers: ["Content-Type": "text/plain; charset=utf-8"], body: .init(string: text))
    }

    /// A plain-text error page that names only the status: internals stay in the error log.
    public static func error(_ status: ResponseStatus) -> Response {
        .text("\(status)\n", status: status)
    }
}

/// The body of a ``Response``: bytes in memory, or a stream the application writes with backpressure.
public struct ResponseBody: Sendable {
    public enum Storage: Sendable {
        case bytes(ByteBuffer)
        case stream(length: Int?, write: @Sendable (any ResponseBodyWriter) async throws -> Void)
    }

    public var storage: Storage

    public init(_ buffer: ByteBuffer) { storage = .bytes(buffer) }

    public init(string: String) { storage = .bytes(ByteBuffer(string: string)) }

    public init<Bytes: Sequence<UInt8>>(bytes: Bytes) { storage = .bytes(ByteBuffer(bytes: bytes)) }

    public static let empty = ResponseBody(ByteBuffer())

    /// A streamed body: `write` is called once and writes chunks as it produces them; each write
    /// suspends while the peer is slow, so a large download or an endless event stream never sits
    /// in memory. Give `length` when known (it becomes Content-Length over HTTP).
    public static func stream(
        length: Int? = nil,
        _ write: @escaping @Sendable (any ResponseBodyWriter) async throws -> Void
    ) -> ResponseBody {
        ResponseBody(storage: .stream(length: length, write: write))
    }

    package init(storage: Storage) { self.storage = storage }

    /// The body's length when known before writing.
    public var knownLength: Int? {
        switch storage {
        case .bytes(let buffer): return buffer.readableBytes
        case .stream(let length, _): return length
        }
    }

    /// Writes the whole body to `writer`.
    public func write(to writer: any ResponseBodyWriter) async throws {
        switch storage {
        case .bytes(let buffer):
            if buffer.readableBytes > 0 { try await writer.write(buffer) }
        case .stream(_, let write):
            try await write(writer)
        }
    }
}

/// Where an application writes a streamed response body. `write` returns once the adapter can
/// take more (backpressure); it throws when the client has gone away.
public protocol ResponseBodyWriter: Sendable {
    func write(_ buffer: ByteBuffer) async throws
}

extension ResponseBodyWriter {
    public func write(_ string: String) async throws {
        try await write(ByteBuffer(string: string))
    }

    public func write<Bytes: Sequence<UInt8>>(bytes: Bytes) async throws {
        try await write(ByteBuffer(bytes: bytes))
    }
}
