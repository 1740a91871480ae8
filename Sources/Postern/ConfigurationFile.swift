import FoundationEssentials
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A `--config` file: one JSON object (RFC 8259) whose keys are long option names, read with
/// FoundationEssentials' `JSONDecoder` (`JSONSerialization` would bring all of Foundation, and
/// with it the ICU tables).
///
/// Each value is checked against its option's kind as it is read, so a wrong type is one error
/// naming the file, the key, what was expected and what was found.
struct ConfigurationFile {
    /// Each key of the file that is an option, as option arguments (`["30"]`, `["a", "b"]`,
    /// `["true"]`).
    let values: [String: [String]]

    /// Reads and checks the file at `path` against `keys`: every key must be an option.
    init(path: String, keys: [ServeConfiguration.Key]) throws(ServeConfiguration.ConfigurationError) {
        let bytes: [UInt8]
        do {
            bytes = try Self.read(path)
        } catch {
            throw .init(description: "--config \(path): cannot read it: \(error)")
        }
        let object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(bytes))
        } catch DecodingError.typeMismatch {
            throw .init(description: "--config \(path): expected a JSON object of option names and values")
        } catch {
            throw .init(description: "--config \(path): cannot read it as JSON: \(Self.describe(error))")
        }
        let known = Dictionary(keys.map { ($0.name, $0.kind) }, uniquingKeysWith: { first, _ in first })
        let unknown = Set(object.keys).subtracting(known.keys).sorted()
        guard unknown.isEmpty else {
            throw .init(
                description:
                    "--config \(path): unknown key\(unknown.count > 1 ? "s" : "") \(unknown.map { "\"\($0)\"" }.joined(separator: ", ")); the keys are the long option names: \(known.keys.sorted().joined(separator: ", "))"
            )
        }
        var values: [String: [String]] = [:]
        for (name, value) in object {
            guard let kind = known[name] else { continue }  // unknown keys were refused above
            guard let arguments = value.arguments(as: kind) else {
                throw .init(description: "\(path): key \"\(name)\": expected \(kind.expected), found \(value)")
            }
            values[name] = arguments
        }
        self.values = values
    }

    /// The file's bytes; a configuration file is small, and a FIFO or a device is refused by
    /// the size check rather than read for ever.
    private static func read(_ path: String) throws -> [UInt8] {
        let descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
        defer { try? descriptor.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            if bytes.count > 1 << 20 { throw Errno.fileTooLarge }
        }
    }

    /// The decoder's reason without its coding path (always empty at the top level).
    private static func describe(_ error: any Error) -> String {
        guard case DecodingError.dataCorrupted(let context) = error else { return "\(error)" }
        return context.underlyingError.map { "\(context.debugDescription) (\($0))" } ?? context.debugDescription
    }
}

/// Any JSON value, as the file has it (and as the emperor writes an app's file again).
package enum JSONValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// The value as option arguments for an option of `kind`, or `nil` when it is of another
    /// type. A number is an integer when it has no fraction (`30.0`); a list may be one string.
    package func arguments(as kind: ServeConfiguration.Kind) -> [String]? {
        switch (kind, self) {
        case (.string, .string(let text)): [text]
        case (.int, .int(let number)): [String(number)]
        case (.int, .double(let number)): Int(exactly: number).map { [String($0)] }
        case (.double, .int(let number)): [String(Double(number))]
        case (.double, .double(let number)): [String(number)]
        case (.bool, .bool(let flag)): [flag ? "true" : "false"]
        case (.list, .string(let text)): [text]
        case (.list, .array(let items)):
            items.allSatisfy { if case .string = $0 { true } else { false } }
                ? items.map { if case .string(let text) = $0 { text } else { "" } } : nil
        default: nil
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let flag): try container.encode(flag)
        case .int(let number): try container.encode(number)
        case .double(let number): try container.encode(number)
        case .string(let text): try container.encode(text)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }

    package var description: String {
        switch self {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .int(let number): String(number)
        case .double(let number): String(number)
        case .string(let text): "\"\(text)\""
        case .array(let items): "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .object: "an object"
        }
    }
}
