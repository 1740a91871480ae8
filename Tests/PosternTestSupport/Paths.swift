/// Where the package, its built binaries and the per-test directories are.
import Foundation

/// Where the package and its built binaries are.
public enum Paths {
    /// The package root, found from this file's path.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The built executables (`swift build` puts them in .build/debug); POSTERN_BIN_DIR overrides.
    public static var binDirectory: String {
        ProcessInfo.processInfo.environment["POSTERN_BIN_DIR"] ?? root + "/.build/debug"
    }

    public static func binary(_ name: String) -> String {
        _ = allowRoot
        return binDirectory + "/" + name
    }

    /// The tests start servers on unix sockets and inherited descriptors, as root on CI, where
    /// `postern serve` refuses root without --user: allowed for every process they start.
    private static let allowRoot: Void = { setenv("POSTERN_ALLOW_ROOT", "true", 0) }()

    /// A fresh directory for one test's files, traversable by the front-ends' users (www-data).
    public static func makeTestDirectory(_ label: String) throws -> String {
        let path = "/tmp/postern-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        return path
    }
}
