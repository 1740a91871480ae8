/// One CGI meta-variable value: the bytes that arrived on the wire, kept losslessly, with a UTF-8 view.
///
/// RFC 3875 §4.1 defines meta-variable values as byte strings; most are UTF-8 (or ASCII) in
/// practice, so valid UTF-8 is stored as a `String` (short ones need no allocation) and anything
/// else as the raw bytes.
public struct EnvironValue: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    enum Storage: Sendable, Hashable {
        case utf8(String)
        case raw([UInt8])
    }

    let storage: Storage

    public init(_ string: String) { self.storage = .utf8(string) }

    public init(stringLiteral value: String) { self.storage = .utf8(value) }

    /// Keeps `bytes` exactly; valid UTF-8 is stored as a string.
    public init<Bytes: Collection<UInt8>>(bytes: Bytes) {
        if let string = String(validating: bytes, as: UTF8.self) {
            self.storage = .utf8(string)
        } else {
            self.storage = .raw(Array(bytes))
        }
    }

    /// Bytes from an environ's buffer: ASCII (most values) becomes a string without the generic
    /// UTF-8 validation.
    init(validating bytes: UnsafeBufferPointer<UInt8>) {
        if Self.isASCII(bytes) {
            self.init(String(decoding: bytes, as: UTF8.self))
        } else {
            self.init(bytes: bytes)
        }
    }

    /// Whether every byte is ASCII (so the bytes are valid UTF-8 without further checks).
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in bytes where byte >= 0x80 { return false }
        return true
    }

    /// Calls `body` with the exact bytes, without copying them when the value is a native string.
    public func withBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        switch storage {
        case .utf8(let string):
            if let result = try string.utf8.withContiguousStorageIfAvailable(body) { return result }
            return try Array(string.utf8).withUnsafeBufferPointer(body)
        case .raw(let bytes): return try bytes.withUnsafeBufferPointer(body)
        }
    }

    /// The exact bytes.
    public var bytes: [UInt8] {
        switch storage {
        case .utf8(let string): return Array(string.utf8)
        case .raw(let bytes): return bytes
        }
    }

    /// The value as a string if its bytes are valid UTF-8, else `nil`.
    public var utf8: String? {
        if case .utf8(let string) = storage { return string }
        return nil
    }

    /// The value as a string; invalid UTF-8 sequences become U+FFFD.
    public var string: String {
        switch storage {
        case .utf8(let string): return string
        case .raw(let bytes): return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Whether the bytes are valid UTF-8.
    public var isUTF8: Bool { utf8 != nil }

    public var isEmpty: Bool {
        switch storage {
        case .utf8(let string): return string.isEmpty
        case .raw(let bytes): return bytes.isEmpty
        }
    }

    public var description: String { string }
}
