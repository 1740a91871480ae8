// Every option declared once: the command line's options and the declarations agree, each
// declaration reads its file key and its POSTERN_* variable into the right property, and the
// options table in docs/options.md is the one they make.
import ArgumentParser
import Foundation
import Postern
import PosternTestSupport
import Testing

@Suite struct OptionDeclarationTests {
    /// An option as the argument parser knows it (its `--experimental-dump-help` view).
    struct ParsedOption: Decodable {
        struct Name: Decodable {
            let kind: String
            let name: String
        }
        let kind: String
        let names: [Name]?
        let valueName: String?
        let defaultValue: String?
        let abstract: String?

        var longName: String? { names?.first { $0.kind == "long" }?.name }
    }

    struct Dump: Decodable {
        struct Command: Decodable { let arguments: [ParsedOption]? }
        let command: Command
    }

    /// The options that say how to read the others, not options a file may set.
    static let meta: Set<String> = ["config", "print-config", "check-config", "help", "version"]

    static func parsedOptions<Options: ParsableArguments>(_ type: Options.Type) throws -> [ParsedOption] {
        let dump = try JSONDecoder().decode(Dump.self, from: Data(type._dumpHelp().utf8))
        return (dump.command.arguments ?? []).filter { $0.longName.map { !meta.contains($0) } ?? false }
    }

    @Test func everyOptionOfTheCommandLineIsDeclaredExactlyOnce() throws {
        for (parsed, declared) in [
            (try Self.parsedOptions(ServeOptions.self).compactMap(\.longName), ServeOptions.declarations.map(\.name)),
            (try Self.parsedOptions(CGIHostOptions.self).compactMap(\.longName), CGIHostOptions.declarations.map(\.name)),
        ] {
            #expect(!parsed.isEmpty)
            #expect(Set(declared).count == declared.count, "an option declared twice: \(declared)")
            #expect(Set(parsed).subtracting(declared).sorted() == [], "options with no declaration (file key, variable, --print-config)")
            #expect(Set(declared).subtracting(parsed).sorted() == [], "declarations of no option")
        }
    }

    /// A valid value of each option, as text, and as `--print-config` shows it.
    static func sample(_ declaration: OptionDeclaration<ServeOptions>) -> (given: [String], shown: String) {
        let special: [String: String] = [
            "workers": "3", "log-level": "debug", "socket-mode": "640", "umask": "027", "mount": "/app", "status": "127.0.0.1:1",
            "user": "nobody", "group": "nogroup", "socket-owner": "nobody", "socket-group": "nogroup", "tls-min-version": "1.3",
            "workers-min": "1", "workers-max": "4",
        ]
        switch declaration.key.kind {
        case .list:
            let values = declaration.name == "allow" ? ["10.0.0.0/8", "127.0.0.1"] : ["127.0.0.1:1", "unix:/tmp/x.sock"]
            return (values, "[" + values.joined(separator: ", ") + "]")
        case .bool: return (["true"], "true")
        case .int: return ([special[declaration.name] ?? "2048"], special[declaration.name] ?? "2048")
        case .double: return (["2.5"], "2.5")
        case .string:
            let value = special[declaration.name] ?? "/tmp/postern-option-sample"
            return ([value], value)
        }
    }

    @Test func everyDeclarationReadsItsVariableAndItsFileKeyIntoItsOption() throws {
        let directory = try Paths.makeTestDirectory("option-declarations")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for declaration in ServeOptions.declarations {
            let sample = Self.sample(declaration)
            let variable = declaration.key.kind == .list ? sample.given.joined(separator: ",") : sample.given[0]
            let json: String
            switch declaration.key.kind {
            case .list: json = "[" + sample.given.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            case .bool, .int, .double: json = sample.given[0]
            case .string: json = "\"\(sample.given[0])\""
            }
            let file = directory + "/\(declaration.name).json"
            try #"{"\#(declaration.name)": \#(json)}"#.write(toFile: file, atomically: true, encoding: .utf8)
            for (environment, source) in [
                ([declaration.key.environmentName: variable], ServeConfiguration.Source.environment(declaration.key.environmentName)),
                (["POSTERN_CONFIG": file], .file(file)),
            ] {
                let resolution = try ServeConfiguration.resolve(arguments: [], keys: ServeOptions.configurationKeys, environment: environment)
                #expect(ServeConfiguration.setting(declaration.name, in: resolution.settings)?.source == source, "\(declaration.name)")
                let options = try ServeOptions.parse(resolution.added)
                #expect(options.configurationValue(declaration.name) == sample.shown, "\(declaration.name) from \(source)")
            }
        }
    }

    @Test func optionsOpenedAtStartAreTheOnesAReloadCannotChange() {
        let restart = Set(ServeOptions.declarations.filter { $0.reload == .needsRestart }.map(\.name))
        #expect(
            restart == [
                "http", "fastcgi", "scgi", "uwsgi", "https", "suwsgi", "fastcgi-tls", "socket-mode", "backlog", "workers-min", "workers-max",
                "worker-idle-exit",
            ])
        let singleProcess = Set(ServeOptions.declarations.filter { $0.reload == .needsRestartWithoutWorkers }.map(\.name))
        #expect(singleProcess == ["user", "group", "socket-owner", "socket-group"])
    }

    /// The options table: one row per declaration, its help and default from the option itself.
    static func table() throws -> String {
        var lines = [
            "| option | file key, variable | default | on reload | what it does |",
            "|---|---|---|---|---|",
        ]
        func rows<Options: ParsableArguments>(_ type: Options.Type, _ declarations: [OptionDeclaration<Options>]) throws {
            let parsed = Dictionary(try parsedOptions(type).compactMap { option in option.longName.map { ($0, option) } }) { first, _ in first }
            for declaration in declarations {
                let option = parsed[declaration.name]
                let value = option?.kind == "flag" ? nil : option?.valueName
                let flag = "`--\(declaration.name)" + (value.map { " \($0)" } ?? "") + "`"
                let key = "`\(declaration.name)`, `\(declaration.key.environmentName)`"
                let fallback = declaration.key.kind == .bool ? "false" : ""
                let defaultValue = option?.defaultValue.map { "`\($0)`" } ?? fallback
                let reload =
                    switch declaration.reload {
                    case .applies: "applied"
                    case .needsRestart: "restart"
                    case .needsRestartWithoutWorkers: "restart without --workers"
                    }
                let help = (option?.abstract ?? "").replacing("|", with: "\\|")
                lines.append("| \(flag) | \(key) | \(defaultValue) | \(reload) | \(help) |")
            }
        }
        try rows(ServeOptions.self, ServeOptions.declarations)
        try rows(CGIHostOptions.self, CGIHostOptions.declarations)
        return lines.joined(separator: "\n")
    }

    static let begin = "<!-- options table: made from the declarations; POSTERN_WRITE_DOCS=1 swift test --filter OptionDeclarationTests -->"
    static let end = "<!-- end of the options table -->"

    @Test func theDocsOptionsTableIsTheOneTheDeclarationsMake() throws {
        let path = Paths.root + "/docs/options.md"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        guard let start = text.range(of: Self.begin), let stop = text.range(of: Self.end, range: start.upperBound..<text.endIndex) else {
            Issue.record("docs/options.md has no options table between its markers")
            return
        }
        let expected = "\n" + (try Self.table()) + "\n"
        let found = String(text[start.upperBound..<stop.lowerBound])
        if found != expected, ProcessInfo.processInfo.environment["POSTERN_WRITE_DOCS"] == "1" {
            try text.replacingCharacters(in: start.upperBound..<stop.lowerBound, with: expected).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(found == expected, "docs/options.md is out of date: run POSTERN_WRITE_DOCS=1 swift test --filter OptionDeclarationTests")
    }

    /// `postern emperor`'s options (its own declarations are in the executable, out of a test's
    /// reach): every one the command line takes is in docs/emperor.md's options table, and the
    /// table lists no other.
    @Test func theEmperorsOptionsAreTheOnesItsPageLists() async throws {
        let result = try await PosternCommand.run(["emperor", "--experimental-dump-help"])
        #expect(result.status == 0, "\(result.error)")
        let dump = try JSONDecoder().decode(Dump.self, from: Data(result.output.utf8))
        let parsed = Set((dump.command.arguments ?? []).compactMap(\.longName)).subtracting(["help", "version"])
        #expect(parsed.contains("tyrant") && parsed.contains("config"), "\(parsed)")
        let page = try String(contentsOfFile: Paths.root + "/docs/emperor.md", encoding: .utf8)
        var listed = Set<String>()
        for row in page.split(separator: "\n") where row.hasPrefix("| `--") {
            let first = row.dropFirst(2).prefix { $0 != "|" }
            for name in first.split(separator: "`").filter({ $0.hasPrefix("--") }) {
                listed.insert(String(name.dropFirst(2).prefix { $0 != " " }))
            }
        }
        #expect(parsed.subtracting(listed).sorted() == [], "options of postern emperor missing from docs/emperor.md's table")
        #expect(listed.subtracting(parsed).sorted() == [], "docs/emperor.md's table lists options postern emperor does not take")
    }
}
