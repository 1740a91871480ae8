import NIOCore
import PosternCore
import PosternEngine

/// FastCGI's answer to a connection over `--max-connections`: FCGI_END_REQUEST with
/// FCGI_OVERLOADED (§5.5, "the application is out of some resource") for the request id in the
/// first record's header (§3.3: version, type, requestId), read before anything else. A
/// connection that opens with a management record (id 0) is closed without an answer.
extension FastCGIProtocolServer {
    public func busyAnswer(prefix: ByteBufferView) -> BusyAnswer {
        guard prefix.count >= 4 else { return .needMore }
        let start = prefix.startIndex
        let id = UInt16(prefix[start + 2]) << 8 | UInt16(prefix[start + 3])
        guard id != FastCGIRecord.managementID else { return .close }
        var out = ByteBuffer()
        FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: .overloaded, into: &out)
        return .send(out)
    }
}
