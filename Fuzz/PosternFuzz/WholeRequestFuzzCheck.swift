// The engine's fast path on the same fuzz input: a protocol's WholeRequestCodec either leaves the
// bytes to the full engine or returns a request whose body is exactly its CONTENT_LENGTH.
import Logging
import NIOCore
import PosternCore
import PosternEngine

enum WholeRequestFuzzCheck {
    static let configuration: GatewayConfiguration = {
        var limits = GatewayLimits()
        limits.maxHeaderBytes = 4096
        limits.maxBodyBytes = 1 << 16
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        return GatewayConfiguration(application: ApplicationFunction { _ in .text("") }, limits: limits, logger: logger)
    }()

    static let connection = ConnectionContext(remoteAddress: nil, localAddress: nil, configuration: configuration, logger: configuration.logger)

    /// Runs `codec` on the whole input (as the first read of a connection) and checks what it
    /// returns; a crash or a broken invariant stops the fuzzer.
    static func check(_ codec: any WholeRequestCodec, _ bytes: [UInt8]) {
        guard let whole = codec.wholeRequest(in: ByteBuffer(bytes: bytes), connection: connection) else { return }
        precondition(whole.body.readableBytes <= configuration.limits.maxBodyBytes)
        precondition(whole.body.readableBytes < bytes.count)
        if codec.gatewayProtocol == .fastcgi, case .success(let variables) = whole.variables, variables.variables["FCGI_ROLE"]?.string == "RESPONDER" {
            // FastCGI's codec takes a body only when its STDIN matches CONTENT_LENGTH.
            precondition((variables.contentLength ?? 0) == whole.body.readableBytes)
        }
        var out = ByteBuffer()
        whole.errors?.write("fuzz")
        whole.framing.writeWholeOrRefuse(.text("ok"), body: ByteBuffer(string: "ok"), into: &out, logger: configuration.logger)
        precondition(out.readableBytes > 0)
    }
}
