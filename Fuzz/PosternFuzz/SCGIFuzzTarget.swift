// The SCGI fuzz target: netstring decoder → SCGIRequestHead → normalizer, then end of input.
import NIOCore
import PosternCore
import PosternEngine
import PosternSCGI

public enum SCGIFuzzTarget {
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        WholeRequestFuzzCheck.check(SCGIProtocolServer(configuration: WholeRequestFuzzCheck.configuration), input.bytes)
        var limits = GatewayLimits()
        limits.maxHeaderBytes = 4096
        limits.maxBodyBytes = 1 << 16
        let processor = NIOSingleStepByteToMessageProcessor(SCGIRequestDecoder(limits: limits), maximumBufferSize: 1 << 20)
        var bodyBytes = 0
        let receive: (RequestPart<SCGIRequestHead>) -> Void = { part in
            switch part {
            case .head(let head, let bodyLength):
                precondition(bodyLength == head.contentLength && bodyLength <= limits.maxBodyBytes)
                var builder = EnvironBuilder(gatewayProtocol: .scgi, maxBytes: limits.maxHeaderBytes)
                head.forEachHeader { name, value in
                    if !name.elementsEqual("SCGI".utf8) { builder.addVariable(name: name, value: value) }
                }
                precondition(head.headers.count >= 2)  // CONTENT_LENGTH and SCGI at least
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
