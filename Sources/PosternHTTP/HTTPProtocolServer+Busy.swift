import NIOCore
import PosternCore
import PosternEngine

/// HTTP's answer to a connection over `--max-connections`: 503 (RFC 9110 §15.6.4) with
/// `Retry-After` and `Connection: close`, as HTTP/1.1 (the version a server conformant to it
/// sends, RFC 9110 §6.2, whatever the request's), at once.
extension HTTPProtocolServer {
    public func busyAnswer(prefix: ByteBufferView) -> BusyAnswer {
        Self.busyResponse(connectionClose: true) { response, buffer throws(ResponseError) in
            try response.encodeHTTPHead(into: &buffer)
        }
    }
}
