import Foundation
import PosternTestSupport
import Testing

/// The deployment guide (docs/deploying.md) shows every shipped configuration exactly as
/// shipped, and every shipped configuration is exercised by a front-end test.
@Suite("Deployment guide")
struct ReadmeGuideTests {
    static let folders = ["apache", "lighttpd", "examples/nginx", "examples/haproxy"]

    static func shippedFiles() throws -> [String] {
        try folders.flatMap { folder in
            try FileManager.default.contentsOfDirectory(atPath: Paths.root + "/" + folder)
                .filter { $0.hasSuffix(".conf") || $0.hasSuffix(".cfg") }
                .map { folder + "/" + $0 }
        }.sorted()
    }

    @Test("docs/deploying.md shows each shipped file line for line")
    func readmeMatchesFiles() throws {
        let guide = try String(contentsOfFile: Paths.root + "/docs/deploying.md", encoding: .utf8)
        let files = try Self.shippedFiles()
        #expect(files.count >= 18)
        for path in files {
            let content = try ShippedConfig.text(path)
            let language =
                path.hasPrefix("examples/nginx") ? "nginx" : path.hasPrefix("examples/haproxy") ? "haproxy" : (path.hasPrefix("apache") ? "apache" : "lighttpd")
            let block = "<!-- config: \(path) -->\n```\(language)\n\(content)```\n<!-- /config -->"
            let shown = guide.contains(block)  // outside #expect: a failure must not print the guide
            #expect(shown, "docs/deploying.md differs from \(path): run scripts/sync-readme-configs.py")
        }
    }

    @Test("examples/README.md shows the greeter package's files exactly as they are built and tested")
    func guideMatchesGreeter() throws {
        let guide = try String(contentsOfFile: Paths.root + "/examples/README.md", encoding: .utf8)
        for path in ["examples/greeter/Package.swift", "examples/greeter/Sources/greeter/Greeter.swift"] {
            let content = try ShippedConfig.text(path)
            let shown = guide.contains("```swift\n\(content)```\n")
            #expect(shown, "examples/README.md differs from \(path)")
        }
    }

    @Test("every shipped file is started by a front-end test")
    func everyFileIsTested() throws {
        let directory = Paths.root + "/Tests/FrontEndTests"
        let sources = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix("Tests.swift") && $0 != "ReadmeGuideTests.swift" }
            .map { try String(contentsOfFile: directory + "/" + $0, encoding: .utf8) }
            .joined()
        for path in try Self.shippedFiles() {
            let loaded = sources.contains("\"\(path)\"")
            #expect(loaded, "no front-end test loads \(path)")
        }
    }
}
