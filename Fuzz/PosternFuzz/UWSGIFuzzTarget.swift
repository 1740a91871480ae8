// The uwsgi fuzz target: packet decoder → UWSGIRequestHead → normalizer, then end of input.
import NIOCore
import PosternCore
import PosternEngine
import PosternUWSGI

public enum UWSGIFuzzTarget {
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        WholeRequestFuzzCheck.check(UWSGIProtocolServer(configuration: WholeRequestFuzzCheck.configuration), input.bytes)
        var limits = GatewayLimits()
        limits.maxHeaderBytes = 4096
        limits.maxUWSGIVarsBytes = 4096
        limits.maxBodyBytes = 1 << 16
        let processor = NIOSingleStepByteToMessageProcessor(UWSGIRequestDecoder(limits: limits), maximumBufferSize: 1 << 20)
        var bodyBytes = 0
        let receive: (RequestPart<UWSGIRequestHead>) -> Void = { part in
            switch part {
            case .head(let head, let bodyLength):
                precondition(bodyLength == head.contentLength && bodyLength <= limits.maxBodyBytes)
                var builder = EnvironBuilder(gatewayProtocol: .uwsgi, maxBytes: limits.maxUWSGIVarsBytes)
                var count = 0
                head.forEachVariable { key, value in
                    builder.addVariable(name: key, value: value)
                    count += 1
                }
                precondition(head.variables.count == count)
                _ = try? builder.finish()
            case .body(let chunk, _):
                bodyBytes += chunk.readableBytes
                precondition(bodyBytes <= limits.maxBodyBytes)
            }
        }
        do {
            for chunk in input.chunks {
                try processor.process(buffer: chunk, receive)
            }
            try processor.finishProcessing(seenEOF: true, receive)
        } catch {
            // Refused: the expected outcome for bad bytes.
        }
    }
}
