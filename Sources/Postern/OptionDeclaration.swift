/// One option of a serving command, declared once beside its `@Option` property: its long name
/// and kind (which give its file key and its `POSTERN_*` variable, ``ServeConfiguration``), how
/// `--print-config` shows its value, and what a reload does with it. The property holds its
/// type, default and help; `OptionDeclarationTests` fails when an option of the command line
/// has no declaration, a declaration has no option, or the options table in docs/options.md is
/// not the one they make.
public struct OptionDeclaration<Options>: Sendable {
    public let key: ServeConfiguration.Key
    public let reload: OptionReload
    /// The value as `--print-config` shows it.
    public let show: @Sendable (Options) -> String

    public var name: String { key.name }

    public init(_ name: String, _ kind: ServeConfiguration.Kind, reload: OptionReload = .applies, show: @escaping @Sendable (Options) -> String) {
        self.key = ServeConfiguration.Key(name, kind)
        self.reload = reload
        self.show = show
    }

    /// The same option in a command that holds `Options` as an `@OptionGroup`.
    public func within<Command>(_ group: @escaping @Sendable (Command) -> Options) -> OptionDeclaration<Command> {
        let show = self.show
        return OptionDeclaration<Command>(name, key.kind, reload: reload) { show(group($0)) }
    }

    /// A repeatable option: a JSON array in a file, comma-separated in the environment.
    public static func list(_ name: String, reload: OptionReload = .applies, _ value: @escaping @Sendable (Options) -> [String]) -> Self {
        Self(name, .list, reload: reload) { "[" + value($0).joined(separator: ", ") + "]" }
    }

    public static func string(_ name: String, reload: OptionReload = .applies, _ value: @escaping @Sendable (Options) -> String) -> Self {
        Self(name, .string, reload: reload, show: value)
    }

    /// An option with no default: `none` says what its absence means.
    public static func optional(
        _ name: String, none: String = "(none)", reload: OptionReload = .applies, _ value: @escaping @Sendable (Options) -> String?
    ) -> Self {
        Self(name, .string, reload: reload) { value($0) ?? none }
    }

    public static func int(_ name: String, reload: OptionReload = .applies, _ value: @escaping @Sendable (Options) -> Int) -> Self {
        Self(name, .int, reload: reload) { String(value($0)) }
    }

    public static func double(_ name: String, reload: OptionReload = .applies, _ value: @escaping @Sendable (Options) -> Double) -> Self {
        Self(name, .double, reload: reload) { String(value($0)) }
    }

    public static func flag(_ name: String, _ value: @escaping @Sendable (Options) -> Bool) -> Self {
        Self(name, .bool) { String(value($0)) }
    }
}

/// What a reload (SIGHUP, SIGUSR2) does with a changed value.
public enum OptionReload: Sendable, Equatable {
    /// The reloaded process (or a master's new workers) applies it.
    case applies
    /// A listener: opened once at start and kept across reloads, so a change needs a restart.
    case needsRestart
    /// Applied when a single process opens its listeners (their owner, the user it drops
    /// to): a single process needs a restart, a master's new workers apply it as they start.
    case needsRestartWithoutWorkers
}
