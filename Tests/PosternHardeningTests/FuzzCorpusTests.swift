// Replays the seed corpus and every crash the fuzzers ever found through the fuzz targets.
import Foundation
import PosternFuzz
import Testing

extension Hardening {
    @Suite("Fuzz corpus and crash fixtures replay without trapping")
    struct FuzzCorpusTests {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        static let targets: [(name: String, run: @Sendable (UnsafeBufferPointer<UInt8>) -> Void)] = [
            ("fastcgi", FastCGIFuzzTarget.run), ("scgi", SCGIFuzzTarget.run), ("uwsgi", UWSGIFuzzTarget.run),
            ("http", HTTPFuzzTarget.run), ("cgi-head", CGIResponseHeadFuzzTarget.run),
            ("fastcgi-mux", FastCGIMultiplexFuzzTarget.run), ("timeouts", ConnectionTimeoutsFuzzTarget.run), ("tls", TLSFuzzTarget.run),
        ]

        static func files(_ directory: URL) -> [URL] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
        }

        @Test("every seed and crash fixture runs through its target", arguments: [0, 1, 2, 3, 4, 5, 6, 7])
        func replay(index: Int) throws {
            let target = Self.targets[index]
            let seeds = Self.files(Self.root.appendingPathComponent("../../Fuzz/corpus/\(target.name)").standardizedFileURL)
            let crashes = Self.files(Self.root.appendingPathComponent("Fixtures/fuzz/\(target.name)"))
            #expect(seeds.count >= 3, "the seed corpus of \(target.name) is missing")
            for file in seeds + crashes {
                let bytes = try [UInt8](Data(contentsOf: file))
                bytes.withUnsafeBufferPointer { target.run($0) }
            }
        }
    }
}
