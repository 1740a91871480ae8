import NIOCore
import NIOHTTP1
import PosternCore

/// HTTP's answer to a connection over `--max-connections`: 503 (RFC 9110 §15.6.4) with
/// `Retry-After`, then close.
extension HTTPProtocolServer {
    public func refuse(_ connection: NIOAsyncChannel<Inbound, Outbound>, context: ConnectionContext) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard case .head(let head) = try await iterator.next() else { return }
                let body = ByteBuffer(string: "503 Service Unavailable: too many connections\n")
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
                headers.add(name: "Content-Length", value: String(body.readableBytes))
                headers.add(name: "Retry-After", value: "1")
                headers.add(name: "Connection", value: "close")
                let version = head.version.major == 1 && head.version.minor == 0 ? HTTPVersion.http1_0 : .http1_1
                try await outbound.write(.head(HTTPResponseHead(version: version, status: .serviceUnavailable, headers: headers)))
                if head.method != .HEAD { try await outbound.write(.body(.byteBuffer(body))) }
                try await outbound.write(.end(nil))
                // Read the rest of the request (bounded by the caller's deadline): closing with
                // unread bytes would reset the connection and could lose the 503 on its way.
                while let part = try await iterator.next() {
                    if case .end = part { break }
                }
            }
        } catch {
            context.logger.debug("refused connection ended", metadata: ["error": "\(error)"])
        }
    }
}
