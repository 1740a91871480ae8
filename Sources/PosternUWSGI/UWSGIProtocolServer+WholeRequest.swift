import NIOCore
import PosternCore

/// uwsgi on the engine's fast path: the packet header, its vars and the whole body in the first
/// read.
extension UWSGIProtocolServer: OneRequestCodec {
    public func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest? {
        guard let (head, body) = Self.decodeWhole(bytes, with: UWSGIRequestDecoder(limits: configuration.limits)) as (UWSGIRequestHead, ByteBuffer)? else {
            return nil
        }
        let variables = Result { () throws(NormalizationError) in try Self.variables(for: head, context: connection) }
        return WholeRequest(variables: variables, body: body, framing: CloseDelimitedFraming(statusLine: true))
    }
}
