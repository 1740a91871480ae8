import NIOCore
import NIOHTTP1
import PosternCore

/// How a ``Response`` goes out as HTTP/1.1 parts (RFC 9112 §6): its head, and its body framed by
/// `Content-Length`, chunked encoding or the connection's close; and whether the connection may
/// carry another request after it. A pure value, made before anything is written.
struct HTTPResponsePlan {
    let head: HTTPResponseHead
    /// The response tells the client the connection stays open.
    let keepAlive: Bool
    /// No body goes out whatever the application gave (HEAD, 1xx, 204, 304: RFC 9110 §6.4.1).
    let bodiless: Bool
    /// The length the application declared in its own `Content-Length`, checked against what it writes.
    let declaredLength: Int?
    let chunked: Bool

    /// - Parameters:
    ///   - forceClose: the connection closes after this response (a refusal).
    ///   - draining: the server drains: the connection closes after this response.
    init(_ response: Response, answering request: HTTPRequestHead, forceClose: Bool = false, draining: Bool) {
        var keepAlive = request.isKeepAlive && !forceClose && !draining
        let code = response.status.code
        bodiless = request.method == .HEAD || (100..<200).contains(code) || code == 204 || code == 304
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 2)
        for field in response.headers {
            headers.add(name: field.name, value: field.value)
        }
        declaredLength = headers.first(name: "content-length").flatMap(Int.init)
        var chunked = false
        if declaredLength == nil, code != 204, code != 304, !(100..<200).contains(code) {
            if let length = response.body.knownLength {
                headers.add(name: "Content-Length", value: String(length))
            } else if request.version.major == 1 && request.version.minor >= 1 {
                headers.add(name: "Transfer-Encoding", value: "chunked")
                chunked = true
            } else {
                keepAlive = false
            }
        }
        if !keepAlive {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if request.version.minor == 0 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
        self.chunked = chunked
        self.keepAlive = keepAlive
        self.head = HTTPResponseHead(
            version: request.version,
            status: HTTPResponseStatus(statusCode: code, reasonPhrase: response.status.reasonPhrase),
            headers: headers
        )
    }

    /// Whether a body in hand agrees with the declared `Content-Length` (always, when no body
    /// goes out). When it does not, the response stops before its end and the connection closes:
    /// the client cannot frame what would follow.
    func agrees(with body: ByteBuffer) -> Bool {
        bodiless || (declaredLength ?? body.readableBytes) == body.readableBytes
    }
}
