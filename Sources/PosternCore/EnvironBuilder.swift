import NIOCore

/// The one normalizer: every adapter builds its ``Environ`` here, so the rules live in one place.
///
/// Protocols that carry CGI variables (FastCGI params, SCGI headers, uwsgi vars, a CGI process's
/// environment) call ``addVariable(name:value:)``; HTTP calls ``addHeader(name:value:)`` for
/// each request header. ``finish()`` applies the rules that need the whole set.
///
/// Rules (RFC 3875 §4.1, PEP 3333, and the pitfalls in PROTOCOLS.md):
/// - `HTTP_PROXY` is dropped (httpoxy, CVE-2016-5385): nginx forwards a `Proxy:` header as it.
/// - Header names outside `[A-Za-z0-9-]` are dropped: `X_Foo` would collide with `X-Foo`.
/// - `Content-Type`/`Content-Length` become `CONTENT_TYPE`/`CONTENT_LENGTH`, never `HTTP_*`.
/// - Empty `CONTENT_LENGTH`/`CONTENT_TYPE` (nginx on a GET) are removed; a non-numeric or
///   conflicting `CONTENT_LENGTH` is an error: it is the single truth for the body length.
/// - `SCRIPT_NAME` is never `/`: `/` moves to the front of `PATH_INFO` (PEP 3333's rule that
///   SCRIPT_NAME + PATH_INFO is the path, with SCRIPT_NAME empty at the root).
/// - Missing `SCRIPT_NAME`, `PATH_INFO`, `QUERY_STRING` become empty; `GATEWAY_INTERFACE`
///   defaults to `CGI/1.1` (mod_proxy_scgi sends none).
public struct EnvironBuilder: Sendable {
    public let gatewayProtocol: GatewayProtocol
    public private(set) var variables: [String: EnvironValue] = [:]
    /// Names dropped by a rule, with the rule, for the adapter to log at debug level.
    public private(set) var dropped: [(name: String, reason: String)] = []
    private var conflict: NormalizationError?
    private var byteCount = 0
    private let maxBytes: Int

    /// The default of `maxBytes`: the engine's default head limit (`--max-header-bytes`).
    public static let defaultMaxBytes = 128 * 1024

    /// - Parameter maxBytes: the most name and value bytes accepted in all (the head limit).
    public init(gatewayProtocol: GatewayProtocol, maxBytes: Int = EnvironBuilder.defaultMaxBytes) {
        self.gatewayProtocol = gatewayProtocol
        self.maxBytes = maxBytes
        variables.reserveCapacity(32)
    }

    // MARK: CGI variables

    /// Adds a CGI variable as carried by FastCGI, SCGI, uwsgi or a CGI environment.
    public mutating func addVariable<Name: Collection<UInt8>, Value: Collection<UInt8>>(name: Name, value: Value) {
        addBytes(name: name, value: value)
    }

    /// The same for the byte types the adapters hold. Not generic, so that an adapter in another
    /// module runs code specialized here instead of looking up generic metadata per variable
    /// (measured: about 3 % of an SCGI request's CPU time).
    public mutating func addVariable(name: ByteBufferView, value: ByteBufferView) {
        // Most names and values are ASCII: made into strings without generic UTF-8 validation.
        if let name = name.withContiguousStorageIfAvailable(Self.asciiString) ?? nil,
            let text = value.withContiguousStorageIfAvailable(Self.asciiString) ?? nil
        {
            addVariable(name: name, value: EnvironValue(text), byteCount: value.count)
            return
        }
        addBytes(name: name, value: value)
    }

    public mutating func addVariable(name: [UInt8], value: [UInt8]) {
        if let name = name.withUnsafeBufferPointer(Self.asciiString), let text = value.withUnsafeBufferPointer(Self.asciiString) {
            addVariable(name: name, value: EnvironValue(text), byteCount: value.count)
            return
        }
        addBytes(name: name, value: value)
    }

    /// The bytes as a string when they are all ASCII (so valid UTF-8), else `nil`.
    private static func asciiString(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        for byte in bytes where byte >= 0x80 { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func addBytes<Name: Collection<UInt8>, Value: Collection<UInt8>>(name: Name, value: Value) {
        guard let name = String(validating: name, as: UTF8.self) else {
            dropped.append((String(decoding: name, as: UTF8.self), "name is not UTF-8"))
            return
        }
        addVariable(name: name, value: EnvironValue(bytes: value), byteCount: value.count)
    }

    public mutating func addVariable(name: String, value: String) {
        addVariable(name: name, value: EnvironValue(value), byteCount: value.utf8.count)
    }

    private mutating func addVariable(name: String, value: EnvironValue, byteCount valueBytes: Int) {
        guard account(name.utf8.count + valueBytes) else { return }
        guard Self.isVariableName(name) else {
            dropped.append((name, "not a CGI variable name"))
            return
        }
        if name.hasPrefix("HTTP_") {
            switch name {
            case "HTTP_PROXY":
                dropped.append((name, "httpoxy (CVE-2016-5385)"))
                return
            case "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH":
                dropped.append((name, "the body's type and length are CONTENT_TYPE and CONTENT_LENGTH"))
                return
            default:
                break
            }
        }
        set(name, value)
    }

    // MARK: HTTP headers

    /// Adds an HTTP request header as `HTTP_*` (RFC 3875 §4.1.18); repeated fields are joined with
    /// `, ` (`Cookie` with `; `, RFC 9113 §8.2.3).
    public mutating func addHeader(name: String, value: String) {
        guard account(name.utf8.count + value.utf8.count) else { return }
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isHeaderNameByte) else {
            dropped.append((name, "header name outside [A-Za-z0-9-]"))
            return
        }
        if name.caseInsensitiveEquals("Proxy") {
            dropped.append((name, "httpoxy (CVE-2016-5385)"))
            return
        }
        let key: String
        if name.caseInsensitiveEquals("Content-Type") {
            key = "CONTENT_TYPE"
        } else if name.caseInsensitiveEquals("Content-Length") {
            key = "CONTENT_LENGTH"
        } else {
            key = Self.cgiName(forHeader: name)
        }
        if let existing = variables[key] {
            if key == "CONTENT_LENGTH" || key == "CONTENT_TYPE" {
                if existing.string != value { conflict = .conflicting(key) }
                return
            }
            let separator = key == "HTTP_COOKIE" ? "; " : ", "
            variables[key] = EnvironValue(existing.string + separator + value)
        } else {
            variables[key] = EnvironValue(value)
        }
    }

    /// `X-Forwarded-For` → `HTTP_X_FORWARDED_FOR`.
    public static func cgiName(forHeader name: String) -> String {
        var bytes: [UInt8] = Array("HTTP_".utf8)
        bytes.reserveCapacity(5 + name.utf8.count)
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "_"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): bytes.append(byte - 32)
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Sets a variable the adapter computes itself (SERVER_PORT, REMOTE_ADDR, ...), unchecked.
    public mutating func setComputed(_ name: String, _ value: EnvironValue) {
        variables[name] = value
    }

    // MARK: Finishing

    /// The normalized variables and the declared body length.
    public struct Result: Sendable {
        public var variables: [String: EnvironValue]
        /// CONTENT_LENGTH, or `nil` when absent (the body ends with the stream).
        public var contentLength: Int?
        /// `https` when `HTTPS` is `on`/`1` or `REQUEST_SCHEME` is `https`, else `http`.
        public var urlScheme: String
    }

    /// Applies the whole-set rules and checks.
    public func finish() throws(NormalizationError) -> Result {
        if let conflict { throw conflict }
        if byteCount > maxBytes { throw .tooLarge(limit: maxBytes) }
        var variables = self.variables
        guard let method = variables["REQUEST_METHOD"]?.utf8, !method.isEmpty else {
            throw .missing("REQUEST_METHOD")
        }
        guard HeaderSafety.isValidName(method) else { throw .invalid("REQUEST_METHOD") }

        var contentLength: Int?
        if let value = variables["CONTENT_LENGTH"] {
            if value.isEmpty {
                variables["CONTENT_LENGTH"] = nil
            } else {
                guard let text = value.utf8, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                    let length = Int(text)
                else { throw .invalid("CONTENT_LENGTH") }
                contentLength = length
                variables["CONTENT_LENGTH"] = EnvironValue(String(length))
            }
        }
        if variables["CONTENT_TYPE"]?.isEmpty == true { variables["CONTENT_TYPE"] = nil }

        let scriptName = variables["SCRIPT_NAME"] ?? ""
        var pathInfo = variables["PATH_INFO"] ?? ""
        if scriptName.bytes.last == UInt8(ascii: "/") {
            // SCRIPT_NAME never ends with "/" (and so is never "/"): the slash starts PATH_INFO.
            var script = scriptName.bytes
            script.removeLast()
            if pathInfo.bytes.first != UInt8(ascii: "/") {
                pathInfo = EnvironValue(bytes: [UInt8(ascii: "/")] + pathInfo.bytes)
            }
            variables["SCRIPT_NAME"] = EnvironValue(bytes: script)
        } else {
            variables["SCRIPT_NAME"] = scriptName
        }
        variables["PATH_INFO"] = pathInfo
        if variables["QUERY_STRING"] == nil { variables["QUERY_STRING"] = "" }
        if variables["GATEWAY_INTERFACE"] == nil { variables["GATEWAY_INTERFACE"] = "CGI/1.1" }

        let https = variables["HTTPS"]?.string.lowercased()
        let scheme = (https == "on" || https == "1" || variables["REQUEST_SCHEME"]?.string == "https") ? "https" : "http"
        return Result(variables: variables, contentLength: contentLength, urlScheme: scheme)
    }

    // MARK: Helpers

    private mutating func set(_ name: String, _ value: EnvironValue) {
        if name == "CONTENT_LENGTH", let existing = variables[name], existing != value {
            conflict = .conflicting(name)
        }
        variables[name] = value
    }

    private mutating func account(_ bytes: Int) -> Bool {
        byteCount += bytes
        return byteCount <= maxBytes
    }

    /// CGI variable names: letters, digits, `_`, `.` and `-` (Apache passes `SetEnv` names
    /// through; anything else, including `=` and controls, cannot be an environment name).
    static func isVariableName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            isHeaderNameByte(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        } && (!name.hasPrefix("HTTP_") || !name.utf8.contains(UInt8(ascii: "-")))
    }

    static func isHeaderNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// A request whose variables break a rule the normalizer cannot repair. Adapters answer 400
/// (or close the connection) and log the reason.
public enum NormalizationError: Error, Sendable, Hashable, CustomStringConvertible {
    case missing(String)
    case invalid(String)
    case conflicting(String)
    case tooLarge(limit: Int)

    public var description: String {
        switch self {
        case .missing(let name): return "the request has no \(name)"
        case .invalid(let name): return "the request's \(name) is malformed"
        case .conflicting(let name): return "the request carries \(name) twice with different values"
        case .tooLarge(let limit): return "the request's variables exceed \(limit) bytes"
        }
    }
}
