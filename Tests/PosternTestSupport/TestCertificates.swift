/// Certificates for the TLS tests, made with the real `openssl` command.
import Foundation

/// A test CA and what it signed, made with `openssl` (ECDSA P-256, as the docs recommend): a
/// server certificate for localhost and 127.0.0.1–3, a client certificate, and a second CA with
/// a client certificate of its own (which the first CA's listeners must refuse).
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }
    public var clientCertificate: String { directory + "/client.pem" }
    public var clientKey: String { directory + "/client.key" }
    public var otherCA: String { directory + "/other-ca.pem" }
    public var otherClientCertificate: String { directory + "/other-client.pem" }
    public var otherClientKey: String { directory + "/other-client.key" }
    /// The client certificate and its key in one file (HAProxy's `crt`).
    public var clientWithKey: String { directory + "/client-with-key.pem" }

    /// Makes them all in `directory`.
    public static func make(in directory: String) throws -> TestCertificates {
        let made = TestCertificates(directory: directory)
        try made.authority("ca", subject: "/O=Postern Test/CN=Postern Test CA")
        try made.authority("other-ca", subject: "/O=Elsewhere/CN=Other CA")
        try made.leaf(
            "server", subject: "/CN=localhost", authority: "ca",
            extensions: "subjectAltName=DNS:localhost,DNS:postern.internal,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3\nextendedKeyUsage=serverAuth\n")
        try made.leaf("client", subject: "/O=Postern Test/CN=client, the first", authority: "ca", extensions: "extendedKeyUsage=clientAuth\n")
        try made.leaf("other-client", subject: "/O=Elsewhere/CN=intruder", authority: "other-ca", extensions: "extendedKeyUsage=clientAuth\n")
        let combined = try String(contentsOfFile: made.clientCertificate, encoding: .utf8) + String(contentsOfFile: made.clientKey, encoding: .utf8)
        try combined.write(toFile: made.clientWithKey, atomically: true, encoding: .utf8)
        return made
    }

    /// Another server certificate from the same CA (a new key, a new serial): what a renewal
    /// installs. Its certificate and key files.
    public func issueServer(named name: String) throws -> (certificate: String, key: String) {
        try leaf(
            name, subject: "/CN=localhost", authority: "ca",
            extensions: "subjectAltName=DNS:localhost,DNS:postern.internal,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3\nextendedKeyUsage=serverAuth\n")
        return ("\(directory)/\(name).pem", "\(directory)/\(name).key")
    }

    /// The serial number of the certificate a TLS server on 127.0.0.1:`port` presents to a new
    /// connection (`openssl s_client`); nil when no handshake completed.
    public static func servedSerial(port: Int) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "openssl s_client -connect 127.0.0.1:\(port) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -serial",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let line = said.trimmingCharacters(in: .whitespacesAndNewlines)
        return line.hasPrefix("serial=") ? String(line.dropFirst("serial=".count)) : nil
    }

    private func authority(_ name: String, subject: String) throws {
        try Self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc", "-keyout", "\(directory)/\(name).key", "-out",
            "\(directory)/\(name).pem", "-days", "2", "-subj", subject,
        ])
    }

    private func leaf(_ name: String, subject: String, authority: String, extensions: String) throws {
        let ext = "\(directory)/\(name).ext"
        try extensions.write(toFile: ext, atomically: true, encoding: .utf8)
        try Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc", "-keyout", "\(directory)/\(name).key", "-out",
            "\(directory)/\(name).csr", "-subj", subject,
        ])
        try Self.openssl([
            "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", "\(directory)/\(authority).pem", "-CAkey", "\(directory)/\(authority).key",
            "-CAcreateserial", "-out", "\(directory)/\(name).pem", "-days", "2", "-extfile", ext,
        ])
        // The front-ends' workers (www-data) read the client key too.
        chmod("\(directory)/\(name).key", 0o644)
    }

    /// A certificate's serial number as `openssl x509 -serial` prints it (upper-case hex).
    public static func serial(of certificate: String) throws -> String {
        let line = try openssl(["x509", "-noout", "-serial", "-in", certificate]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard line.hasPrefix("serial=") else { throw TestFailure("openssl -serial said \(line)") }
        return String(line.dropFirst("serial=".count))
    }

    /// Runs `openssl` with `arguments`; its output, or a failure with it.
    @discardableResult
    public static func openssl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: said, as: UTF8.self))")
        }
        return String(decoding: said, as: UTF8.self)
    }
}

/// `curl` run to its end: its exit status, standard output and standard error.
public func runCurl(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["--silent", "--show-error", "--max-time", "20"] + arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}
