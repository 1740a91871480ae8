#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `serve`'s options from a file (`--config FILE`, or `POSTERN_CONFIG`; JSON, read by
/// ``ConfigurationFile``) and from `POSTERN_*` environment variables
/// (``environmentValues(of:_:)``): the command line over the environment over the file over the
/// defaults.
///
/// A process manager that starts the binary with no arguments (mod_fcgid, lighttpd's
/// `bin-path`) configures it through its environment (`FcgidInitialEnv`, `bin-environment`) or a
/// file. The keys are the long option names: `max-connections` in the file,
/// `POSTERN_MAX_CONNECTIONS` in the environment. A list (`fastcgi`, `allow`, …) is a JSON array
/// (or one string) or a comma-separated variable; a flag (`debug`) is `true`/`false` (`1`/`0`, `yes`/`no` in the
/// environment).
///
/// What the file and the environment give is added to the command line before it is parsed, so
/// the options are checked in one place and every binary built on `Gateway.main` gets them; for
/// each key the first source that has it wins whole (a list from the environment replaces the
/// file's, it does not add to it). A value of the wrong type, an unknown key in the file, or a
/// file that cannot be read is one message naming the source, the key and what was expected,
/// and nothing starts.
public enum ServeConfiguration {
    public enum Kind: Sendable {
        case string, int, double, bool, list

        var expected: String {
            switch self {
            case .string: "a string"
            case .int: "an integer"
            case .double: "a number"
            case .bool: "true or false"
            case .list: "a list of strings (a JSON array; comma-separated in the environment)"
            }
        }
    }

    /// One option that a file or the environment may set.
    public struct Key: Sendable {
        public let name: String
        public let kind: Kind

        public init(_ name: String, _ kind: Kind) {
            self.name = name
            self.kind = kind
        }

        /// `POSTERN_MAX_CONNECTIONS` for `max-connections`.
        public var environmentName: String {
            "POSTERN_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
        }
    }

    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case commandLine
        case environment(String)
        case file(String)
        case defaultValue

        public var description: String {
            switch self {
            case .commandLine: "command line"
            case .environment(let name): "environment \(name)"
            case .file(let path): "file \(path)"
            case .defaultValue: "default"
            }
        }
    }

    /// Where one key's value came from, and the value as option arguments.
    public struct Setting: Sendable {
        public let key: Key
        public let values: [String]
        public let source: Source
    }

    /// Where a process's options come from: its arguments, the keys its command declares
    /// (``ServeOptions/configurationKeys`` and the command's own), and its environment (which
    /// names the file, `POSTERN_CONFIG` or `--config`). Resolving them is pure but for reading
    /// the file, so a reload resolves the same sources again to see what changed.
    public struct Sources: Sendable {
        public let arguments: [String]
        public let keys: [Key]
        public let environment: [String: String]

        public init(arguments: [String], keys: [Key], environment: [String: String]) {
            self.arguments = arguments
            self.keys = keys
            self.environment = environment
        }

        /// This process's: its command line, ``ServeOptions``' keys and `commandKeys`, its
        /// environment.
        public static func current(commandKeys: [Key]) -> Sources {
            Sources(
                arguments: Array(CommandLine.arguments.dropFirst()), keys: ServeOptions.configurationKeys + commandKeys,
                environment: ProcessEnvironment.current)
        }

        /// The file read and every key's setting found (see ``resolve(arguments:keys:environment:)``).
        public func resolve() throws(ConfigurationError) -> Resolution {
            try ServeConfiguration.resolve(arguments: arguments, keys: keys, environment: environment)
        }
    }

    /// The sources a process started with and what they gave then: a reload resolves the same
    /// sources again and compares (``reread()``).
    public struct Loaded: Sendable {
        public let sources: Sources
        public let settings: [Setting]

        /// Resolves `sources`; a file that cannot be read now leaves `settings` empty (the
        /// command line was already parsed with it, so this only happens if the file changed).
        public init(_ sources: Sources) {
            self.sources = sources
            self.settings = (try? sources.resolve().settings) ?? []
        }

        /// SIGHUP: the file (and the environment) read again as at start.
        public func reread() -> Result<[Setting], ConfigurationError> {
            Result { () throws(ConfigurationError) in try sources.resolve().settings }
        }
    }

    /// What the sources give: the option arguments to add before the command line's, and where
    /// each key's value came from.
    public struct Resolution: Sendable {
        public let added: [String]
        public let settings: [Setting]
    }

    /// The setting of `name` in `settings`.
    public static func setting(_ name: String, in settings: [Setting]) -> Setting? {
        settings.first { $0.key.name == name }
    }

    public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The file named by `--config FILE`, `--config=FILE` or `POSTERN_CONFIG`.
    static func configPath(_ arguments: [String], _ environment: [String: String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--config", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--config=") { return String(argument.dropFirst("--config=".count)) }
            if argument == "--" { break }
        }
        return environment["POSTERN_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The option arguments the environment and the file add to `arguments` (to go before them:
    /// for a repeated single-value option the last one counts, so the command line still wins),
    /// and every key's setting.
    public static func resolve(arguments: [String], keys: [Key], environment: [String: String]) throws(ConfigurationError) -> Resolution {
        let onCommandLine = Set(
            keys.map(\.name).filter { name in
                arguments.contains { $0 == "--" + name || $0.hasPrefix("--" + name + "=") }
            })
        let file = try configPath(arguments, environment).map { path throws(ConfigurationError) in
            (path: path, contents: try ConfigurationFile(path: path, keys: keys))
        }
        var added: [String] = []
        var settings: [Setting] = []
        for key in keys {
            if onCommandLine.contains(key.name) {
                settings.append(Setting(key: key, values: commandLineValues(key, arguments), source: .commandLine))
                continue
            }
            var found: (values: [String], source: Source)?
            if let raw = environment[key.environmentName] {
                found = (try environmentValues(of: key, raw), .environment(key.environmentName))
            } else if let file, let values = file.contents.values[key.name] {
                found = (values, .file(file.path))
            }
            guard let found else {
                settings.append(Setting(key: key, values: [], source: .defaultValue))
                continue
            }
            settings.append(Setting(key: key, values: found.values, source: found.source))
            switch key.kind {
            case .bool:
                if found.values == ["true"] { added.append("--" + key.name) }
            default:
                for value in found.values { added += ["--" + key.name, value] }
            }
        }
        return Resolution(added: added, settings: settings)
    }

    /// What the command line gives `key`.
    private static func commandLineValues(_ key: Key, _ arguments: [String]) -> [String] {
        var values: [String] = []
        for (index, argument) in arguments.enumerated() {
            if argument == "--" + key.name {
                if key.kind == .bool { values.append("true") } else if index + 1 < arguments.count { values.append(arguments[index + 1]) }
            } else if argument.hasPrefix("--" + key.name + "=") {
                values.append(String(argument.dropFirst(key.name.count + 3)))
            }
        }
        return values
    }

    /// A `POSTERN_*` variable's value as option arguments, by its key's kind: a string as it
    /// is; an integer or a number as Swift reads one; a flag `true` or `false`, `yes` or `no`,
    /// `1` or `0` (any case); a list split at its commas, each item trimmed of white space.
    /// Anything else is an error that names the variable, what was expected and what was found.
    static func environmentValues(of key: Key, _ raw: String) throws(ConfigurationError) -> [String] {
        switch key.kind {
        case .string:
            return [raw]
        case .list:
            return raw.split(separator: ",", omittingEmptySubsequences: false).map { item in
                String(item.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
            }
        case .int:
            if let value = Int(raw) { return [String(value)] }
        case .double:
            if let value = Double(raw) { return [String(value)] }
        case .bool:
            switch raw.lowercased() {
            case "true", "yes", "1": return ["true"]
            case "false", "no", "0": return ["false"]
            default: break
            }
        }
        throw ConfigurationError(description: "environment variable \(key.environmentName): expected \(key.kind.expected), found \"\(raw)\"")
    }

    /// `--print-config`: every key, its effective value and where it came from.
    public static func describe(_ options: ServeOptions, settings: [Setting], commandValues: [String: String] = [:]) -> String {
        var lines: [String] = []
        for setting in settings {
            let value =
                options.configurationValue(setting.key.name) ?? commandValues[setting.key.name]
                ?? (setting.values.isEmpty
                    ? "(default)"
                    : setting.key.kind == .list ? "[" + setting.values.joined(separator: ", ") + "]" : setting.values.joined(separator: " "))
            lines.append("\(setting.key.name) = \(value)    # \(setting.source)")
        }
        return lines.joined(separator: "\n")
    }
}
