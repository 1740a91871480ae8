import NIOCore

#if canImport(Glibc)
import Glibc
#endif

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
    public private(set) var variables: EnvironVariables
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
        // nginx's request: about 25 variables and 700 bytes; neither grows in the common case.
        variables = EnvironVariables(reservingCapacity: 40, bytes: 1536)
    }

    // MARK: CGI variables

    /// Adds a CGI variable as carried by FastCGI, SCGI, uwsgi or a CGI environment.
    public mutating func addVariable<Name: Collection<UInt8>, Value: Collection<UInt8>>(name: Name, value: Value) {
        let name = Array(name)
        let value = Array(value)
        addVariable(name: name, value: value)
    }

    /// The same for the byte types the adapters hold: the bytes go straight into the environ's
    /// buffer, checked where they are (no `String` is made of a name or a value).
    public mutating func addVariable(name: ByteBufferView, value: ByteBufferView) {
        let added =
            name.withContiguousStorageIfAvailable { name in
                value.withContiguousStorageIfAvailable { value in addVariable(name: name, value: value) } != nil
            } ?? false
        if !added { addVariable(name: Array(name), value: Array(value)) }
    }

    public mutating func addVariable(name: [UInt8], value: [UInt8]) {
        name.withUnsafeBufferPointer { name in
            value.withUnsafeBufferPointer { value in addVariable(name: name, value: value) }
        }
    }

    public mutating func addVariable(name: String, value: String) {
        var name = name
        var value = value
        name.withUTF8 { name in
            value.withUTF8 { value in addVariable(name: name, value: value) }
        }
    }

    /// The one place a CGI variable is checked and kept.
    public mutating func addVariable(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        if !EnvironValue.isASCII(name), String(validating: name, as: UTF8.self) == nil {
            dropped.append((String(decoding: name, as: UTF8.self), "name is not UTF-8"))
            return
        }
        guard account(name.count + value.count) else { return }
        guard Self.isVariableName(name) else {
            dropped.append((String(decoding: name, as: UTF8.self), "not a CGI variable name"))
            return
        }
        if name.count > 5, Self.hasPrefix(name, "HTTP_") {
            if Self.equals(name, "HTTP_PROXY") {
                dropped.append((String(decoding: name, as: UTF8.self), "httpoxy (CVE-2016-5385)"))
                return
            }
            if Self.equals(name, "HTTP_CONTENT_TYPE") || Self.equals(name, "HTTP_CONTENT_LENGTH") {
                dropped.append((String(decoding: name, as: UTF8.self), "the body's type and length are CONTENT_TYPE and CONTENT_LENGTH"))
                return
            }
        }
        if Self.equals(name, "CONTENT_LENGTH"),
            variables.withValueBytes(of: name, { existing in existing.map { !$0.elementsEqual(value) } ?? false })
        {
            conflict = .conflicting("CONTENT_LENGTH")
        }
        variables.set(name: name, value: value)
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
        var value = value
        value.withUTF8 { value in
            if name.caseInsensitiveEquals("Content-Type") {
                addBodyHeader("CONTENT_TYPE", value: value)
            } else if name.caseInsensitiveEquals("Content-Length") {
                addBodyHeader("CONTENT_LENGTH", value: value)
            } else {
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 5 + name.utf8.count) { key in
                    let count = Self.writeCGIName(forHeader: name, into: key)
                    addHeaderField(name: UnsafeBufferPointer(rebasing: key[..<count]), value: value)
                }
            }
        }
    }

    /// CONTENT_TYPE, CONTENT_LENGTH: a repeat must agree with the first.
    private mutating func addBodyHeader(_ key: StaticString, value: UnsafeBufferPointer<UInt8>) {
        key.withUTF8Buffer { key in
            if let agrees = variables.withValueBytes(of: key, { existing in existing.map { $0.elementsEqual(value) } }) {
                if !agrees { conflict = .conflicting(String(decoding: key, as: UTF8.self)) }
                return
            }
            variables.append(name: key, value: value)
        }
    }

    private mutating func addHeaderField(name key: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard
            let joined = variables.withValueBytes(
                of: key,
                { existing in
                    existing.map { existing -> [UInt8] in
                        let separator: StaticString = Self.equals(key, "HTTP_COOKIE") ? "; " : ", "
                        var joined = Array(existing)
                        separator.withUTF8Buffer { joined.append(contentsOf: $0) }
                        joined.append(contentsOf: value)
                        return joined
                    }
                })
        else {
            variables.append(name: key, value: value)
            return
        }
        joined.withUnsafeBufferPointer { variables.set(name: key, value: $0) }
    }

    /// `X-Forwarded-For` → `HTTP_X_FORWARDED_FOR`.
    public static func cgiName(forHeader name: String) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 5 + name.utf8.count) { key in
            String(decoding: key[..<writeCGIName(forHeader: name, into: key)], as: UTF8.self)
        }
    }

    private static func writeCGIName(forHeader name: String, into key: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var count = 0
        for byte in "HTTP_".utf8 {
            key[count] = byte
            count += 1
        }
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "-"): key[count] = UInt8(ascii: "_")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): key[count] = byte - 32
            default: key[count] = byte
            }
            count += 1
        }
        return count
    }

    /// Sets a variable the adapter computes itself (SERVER_PORT, REMOTE_ADDR, ...), unchecked.
    public mutating func setComputed(_ name: String, _ value: EnvironValue) {
        variables[name] = value
    }

    // MARK: Finishing

    /// The normalized variables and the declared body length.
    public struct Result: Sendable {
        public var variables: EnvironVariables
        /// CONTENT_LENGTH, or `nil` when absent (the body ends with the stream).
        public var contentLength: Int?
        /// `https` when `HTTPS` is `on`/`1` or `REQUEST_SCHEME` is `https`, else `http`.
        public var urlScheme: String
    }

    /// Applies the whole-set rules and checks. Consuming: when this is the builder's last use (as
    /// in every adapter), the variables move into the result and the rules change them in place,
    /// without a copy.
    public consuming func finish() throws(NormalizationError) -> Result {
        if let conflict { throw conflict }
        if byteCount > maxBytes { throw .tooLarge(limit: maxBytes) }
        var variables = EnvironVariables()
        swap(&variables, &self.variables)
        let method = variables.withValueBytes(of: "REQUEST_METHOD") { method -> Bool? in
            guard let method, !method.isEmpty else { return nil }
            return method.allSatisfy(HeaderSafety.isTokenByte)
        }
        guard let method else { throw .missing("REQUEST_METHOD") }
        guard method else { throw .invalid("REQUEST_METHOD") }

        var contentLength: Int?
        if let value = variables["CONTENT_LENGTH"] {
            if value.isEmpty {
                variables.remove("CONTENT_LENGTH")
            } else {
                guard let text = value.utf8, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                    let length = Int(text)
                else { throw .invalid("CONTENT_LENGTH") }
                contentLength = length
                if text.utf8.first == UInt8(ascii: "0") && text.utf8.count > 1 {
                    variables["CONTENT_LENGTH"] = EnvironValue(String(length))  // "007" → "7"
                }
            }
        }
        if variables.withValueBytes(of: "CONTENT_TYPE", { $0?.isEmpty == true }) { variables.remove("CONTENT_TYPE") }

        // SCRIPT_NAME never ends with "/" (and so is never "/"): the slash starts PATH_INFO.
        if let script = variables.withValueBytes(of: "SCRIPT_NAME", { $0?.last == UInt8(ascii: "/") ? Array($0!.dropLast()) : nil }) {
            script.withUnsafeBufferPointer { variables.set("SCRIPT_NAME", $0) }
            if let path = variables.withValueBytes(
                of: "PATH_INFO", { $0?.first == UInt8(ascii: "/") ? nil : [UInt8(ascii: "/")] + Array($0 ?? UnsafeBufferPointer(start: nil, count: 0)) })
            {
                path.withUnsafeBufferPointer { variables.set("PATH_INFO", $0) }
            }
        }
        func setIfMissing(_ name: StaticString, _ value: StaticString) {
            if !variables.contains(name) { value.withUTF8Buffer { variables.set(name, $0) } }
        }
        setIfMissing("SCRIPT_NAME", "")
        setIfMissing("PATH_INFO", "")
        setIfMissing("QUERY_STRING", "")
        setIfMissing("GATEWAY_INTERFACE", "CGI/1.1")

        let https = variables["HTTPS"]?.string.lowercased()
        let scheme = (https == "on" || https == "1" || variables["REQUEST_SCHEME"]?.string == "https") ? "https" : "http"
        return Result(variables: variables, contentLength: contentLength, urlScheme: scheme)
    }

    // MARK: Helpers

    private mutating func account(_ bytes: Int) -> Bool {
        byteCount += bytes
        return byteCount <= maxBytes
    }

    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && memcmp(bytes.baseAddress!, literal.utf8Start, bytes.count) == 0
    }

    static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count >= literal.utf8CodeUnitCount && memcmp(bytes.baseAddress!, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }

    /// CGI variable names: letters, digits, `_`, `.` and `-` (Apache passes `SetEnv` names
    /// through; anything else, including `=` and controls, cannot be an environment name).
    static func isVariableName(_ name: String) -> Bool {
        var name = name
        return name.withUTF8(isVariableName)
    }

    static func isVariableName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !name.isEmpty else { return false }
        var dash = false
        for byte in name {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."):
                continue
            case UInt8(ascii: "-"):
                dash = true
            default:
                return false
            }
        }
        return !dash || !hasPrefix(name, "HTTP_")
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
