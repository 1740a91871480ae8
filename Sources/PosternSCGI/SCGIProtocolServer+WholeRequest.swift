import NIOCore
import PosternCore

/// SCGI on the engine's fast path: a netstring head and its whole body in the first read.
extension SCGIProtocolServer: OneRequestCodec {
    public func wholeRequest(in bytes: ByteBuffer, connection: ConnectionContext) -> WholeRequest? {
        guard let (head, body) = Self.decodeWhole(bytes, with: SCGIRequestDecoder(limits: configuration.limits)) as (SCGIRequestHead, ByteBuffer)? else {
            return nil
        }
        let variables = Result { () throws(NormalizationError) in try Self.variables(for: head, context: connection) }
        return WholeRequest(variables: variables, body: body, framing: CloseDelimitedFraming(statusLine: false))
    }
}
