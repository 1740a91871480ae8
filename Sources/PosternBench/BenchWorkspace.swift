/// The bench's scratch directory and the programs it runs: found next to `postern`, built references.
import Foundation

/// Where everything for one `postern bench` lives: the built binaries it found and the files it made.
public struct BenchWorkspace: Sendable {
    /// The directory of the running `postern` (its siblings `hello` etc. are used, never built).
    public let binDirectory: String
    /// Benchmarks/reference of the package, if found (C and Python references, the shell script).
    public let referenceDirectory: String?
    /// A fresh directory under /tmp, traversable by the front-ends' users (www-data).
    public let directory: String

    public init(binDirectory: String, referenceDirectory: String?) throws {
        self.binDirectory = binDirectory
        self.referenceDirectory = referenceDirectory
        directory = "/tmp/postern-bench-\(getpid())"
        let manager = FileManager.default
        try? manager.removeItem(atPath: directory)
        for sub in ["", "/htdocs/static", "/cgi-bin", "/cgi-host/cgi-host", "/run"] {
            try manager.createDirectory(atPath: directory + sub, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        try "Hello, World!\n".write(toFile: directory + "/htdocs/static/hello.txt", atomically: true, encoding: .utf8)
        chmod(directory + "/htdocs/static/hello.txt", 0o644)
    }

    /// The directory of this executable (/proc/self/exe).
    public static func executableDirectory() -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (path as NSString).deletingLastPathComponent
    }

    /// Benchmarks/reference found above the binaries (.build/release → package root) or in the working directory.
    public static func findReferences(binDirectory: String) -> String? {
        var candidates = [FileManager.default.currentDirectoryPath + "/Benchmarks/reference"]
        var url = URL(fileURLWithPath: binDirectory)
        for _ in 0..<4 {
            url.deleteLastPathComponent()
            candidates.append(url.path + "/Benchmarks/reference")
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/hello-cgi.c") }
    }

    public func binary(_ name: String) -> String? {
        let path = binDirectory + "/" + name
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Copies an executable into the bench's cgi-bin (readable and runnable by www-data).
    public func install(_ source: String, as name: String, in sub: String = "cgi-bin") throws -> String {
        let target = directory + "/" + sub + "/" + name
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: source, toPath: target)
        chmod(target, 0o755)
        return target
    }

    /// `cc -O2 SOURCE -o OUTPUT ...` (the references are built at bench time), or why it could not.
    public func compile(_ sourceName: String, output: String, libraries: [String] = []) -> String? {
        guard let referenceDirectory else { return "Benchmarks/reference not found" }
        guard let cc = Self.which("cc") else { return "no cc on PATH" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cc)
        process.arguments = ["-O2", "-o", output, referenceDirectory + "/" + sourceName] + libraries
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch { return "cc: \(error)" }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : "cc \(sourceName) failed: \(message)"
    }

    /// Builds a Swift package under Benchmarks/reference (release, into `.build-NAME` at the
    /// package root, so a second bench reuses it) and returns its executable, or why it could not.
    /// Hummingbird's first build takes about 2.5 minutes on two cores.
    public func buildSwiftReference(_ name: String) -> Result<String, BenchError> {
        guard let referenceDirectory else { return .failure(BenchError("Benchmarks/reference not found")) }
        guard let swift = Self.which("swift") else { return .failure(BenchError("no swift on PATH")) }
        let root = ((referenceDirectory as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        let scratch = root + "/.build-" + name
        let binary = scratch + "/release/" + name
        let process = Process()
        process.executableURL = URL(fileURLWithPath: swift)
        process.arguments = ["build", "-c", "release", "--package-path", referenceDirectory + "/" + name, "--scratch-path", scratch]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { return .failure(BenchError("swift build \(name): \(error)")) }
        let message = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: binary) else {
            return .failure(BenchError("swift build \(name) failed: \(message.suffix(1500))"))
        }
        return .success(binary)
    }

    /// The TLS modes' files, made with `openssl` on first use: a CA and a server certificate for
    /// localhost, ECDSA P-256 both, as a deployment would choose: the server signs once per full
    /// handshake, and a P-256 signature costs a fraction of an RSA-2048 one, so the figures are
    /// the protocols' and the session reuse's, not RSA's.
    public struct TLSFiles: Sendable {
        public let directory: String
        public var authority: String { directory + "/tls/ca.pem" }
        public var certificate: String { directory + "/tls/server.pem" }
        public var key: String { directory + "/tls/server.key" }

        public init(directory: String) { self.directory = directory }

        /// Makes them unless they exist: `nil`, or why they could not be made.
        public func make() -> String? {
            if FileManager.default.fileExists(atPath: certificate) { return nil }
            guard let openssl = BenchWorkspace.which("openssl") else { return "openssl is not installed (the TLS modes' certificates)" }
            let tls = directory + "/tls"
            try? FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]
            let steps: [[String]] = [
                ["req", "-x509"] + newKey + ["-keyout", tls + "/ca.key", "-out", authority, "-days", "2", "-subj", "/CN=postern bench CA"],
                ["req"] + newKey + ["-keyout", key, "-out", tls + "/server.csr", "-subj", "/CN=localhost"],
                [
                    "x509", "-req", "-in", tls + "/server.csr", "-CA", authority, "-CAkey", tls + "/ca.key", "-CAcreateserial", "-out", certificate,
                    "-days", "2", "-extfile", tls + "/server.ext",
                ],
            ]
            do {
                try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: tls + "/server.ext", atomically: true, encoding: .utf8)
            } catch {
                return "cannot write \(tls)/server.ext: \(error)"
            }
            for arguments in steps {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: openssl)
                process.arguments = arguments
                let output = Pipe()
                process.standardOutput = output
                process.standardError = output
                do { try process.run() } catch { return "openssl: \(error)" }
                let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                guard process.terminationStatus == 0 else { return "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(said)" }
            }
            // uWSGI's workers (and a --user Postern) read the key after dropping privileges.
            chmod(key, 0o644)
            return nil
        }
    }

    /// The full path of a program on PATH (plus the sbin directories, where the front-ends live).
    public static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/usr/bin:/sbin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
