import ArgumentParser
import NIOCore
import NIOPosix
import Postern
import PosternCLI
import PosternClient
import PosternCore

#if canImport(Glibc)
import Glibc
#endif

/// `postern request`: send one request over FastCGI, SCGI, uwsgi or HTTP and print the response like `curl -i`.
struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Send one request to a FastCGI, SCGI, uwsgi or HTTP server and print the response like curl -i.",
        discussion: """
            URL: fastcgi://HOST:PORT/path?query, scgi://…, uwsgi://…, http://…, or fastcgi+unix:///path/to.sock/request/path
            (scgi+unix, uwsgi+unix, http+unix likewise). The TLS listeners: https://…, suwsgi://…, fastcgi-tls://…,
            with --cacert for a private CA and --cert/--key for a server that requires a client certificate.
            The exit status is 0 for any complete response, 1 when the request failed.
            """
    )

    @Argument(help: "The server and request target.")
    var url: String

    @Option(name: [.customShort("X"), .customLong("request")], help: "The request method.")
    var method: String?

    @Option(name: [.customShort("d"), .customLong("data")], help: "The request body.")
    var data: String?

    @Option(name: .customLong("data-file"), help: "Read the request body from a file.")
    var dataFile: String?

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Flag(name: .customLong("body-only"), help: "Print only the body.")
    var bodyOnly = false

    @Option(name: .customLong("cacert"), help: ArgumentHelp("TLS: trust the CAs in this PEM file (instead of the system's).", valueName: "FILE"))
    var caFile: String?

    @Option(name: .customLong("cert"), help: ArgumentHelp("TLS: present this client certificate (PEM).", valueName: "FILE"))
    var certificateFile: String?

    @Option(name: .customLong("key"), help: ArgumentHelp("TLS: the client certificate's private key (PEM).", valueName: "FILE"))
    var keyFile: String?

    func validate() throws {
        if data != nil && dataFile != nil { throw ValidationError("give -d or --data-file, not both") }
        if (certificateFile == nil) != (keyFile == nil) { throw ValidationError("give --cert and --key together") }
        for header in headers where !header.contains(":") {
            throw ValidationError("header \(String(reflecting: header)) is not 'Name: value'")
        }
    }

    func run() async throws {
        let target = try ClientTarget(parsing: url)
        var body = ByteBuffer()
        if let data { body.writeString(data) }
        if let dataFile { body = try readFile(dataFile) }
        let parsedHeaders = headers.map { header -> (name: String, value: String) in
            let colon = header.firstIndex(of: ":")!
            return (String(header[..<colon]), String(header[header.index(after: colon)...].drop { $0 == " " }))
        }
        let request = ClientRequest(
            method: method ?? (data != nil || dataFile != nil ? "POST" : "GET"),
            target: target.requestTarget,
            headers: parsedHeaders,
            body: body
        )
        let response: ClientResponse
        do {
            response = try await ProtocolClients.send(
                request, to: target, tls: ClientTLS(caFile: caFile, certificateFile: certificateFile, keyFile: keyFile))
        } catch let error as IOError {
            throw ClientError.unreachable(server: "\(target.listenerProtocol) server at \(target.address)", reason: ClientError.reason(errno: error.errnoCode))
        } catch let error as NIOConnectionError {
            let cause = error.connectionErrors.last.map { ($0.error as? IOError).map { ClientError.reason(errno: $0.errnoCode) } ?? "\($0.error)" }
            throw ClientError.unreachable(server: "\(target.listenerProtocol) server at \(target.address)", reason: cause ?? "cannot connect")
        }
        let output = bodyOnly ? response.body : response.curlStyle()
        output.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(1, raw.baseAddress! + offset, raw.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        if !response.errorOutput.isEmpty {
            FileHandleStandardError.write(response.errorOutput)
        }
    }

    private func readFile(_ path: String) throws -> ByteBuffer {
        guard let file = fopen(path, "rb") else { throw ValidationError("cannot open \(path)") }
        defer { fclose(file) }
        var buffer = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 { break }
            buffer.writeBytes(chunk[0..<count])
        }
        return buffer
    }
}

enum FileHandleStandardError {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}
