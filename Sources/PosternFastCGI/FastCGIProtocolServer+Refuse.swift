import NIOCore
import PosternCore

/// FastCGI's answer to a connection over `--max-connections`: its first request ends at once
/// with FCGI_OVERLOADED (§5.5, "the application is out of some resource"), then the connection
/// closes.
extension FastCGIProtocolServer {
    public func refuse(_ connection: NIOAsyncChannel<Inbound, Outbound>, context: ConnectionContext) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var refused: UInt16?
                while let record = try await iterator.next() {
                    if refused == nil, record.type == .beginRequest, !record.isManagement {
                        var out = ByteBuffer()
                        FastCGIRecordEncoder.writeEndRequest(requestID: record.requestID, appStatus: 0, protocolStatus: .overloaded, into: &out)
                        try await outbound.write(out)
                        refused = record.requestID
                    }
                    // Read that request's records up to the end of its stdin (bounded by the
                    // caller's deadline): closing with unread bytes would reset the connection
                    // and could lose the END_REQUEST on its way.
                    if let id = refused, record.requestID == id, record.type == .stdin, record.content.readableBytes == 0 { return }
                }
            }
        } catch {
            context.logger.debug("refused connection ended", metadata: ["error": "\(error)"])
        }
    }
}
