// The FastCGI fuzz target: record decoder → connection state machine → name-value pairs → normalizer.
import NIOCore
import PosternCore
import PosternFastCGI

public enum FastCGIFuzzTarget {
    /// Small limits so the fuzzer reaches every refusal quickly.
    static let limits = FastCGIConnectionStateMachine.Limits(maxRequests: 4, maxConnections: 16, maxParamsBytes: 4096, maxParamsRecords: 64)

    /// Feeds `data` as a FastCGI connection would: never traps, whatever the bytes.
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        WholeRequestFuzzCheck.check(FastCGIProtocolServer(configuration: WholeRequestFuzzCheck.configuration), input.bytes)
        let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder(), maximumBufferSize: 1 << 20)
        var machine = FastCGIConnectionStateMachine(limits: limits)
        var closed = false
        let receive: (FastCGIRecord) -> Void = { record in
            guard !closed else { return }
            closed = !handle(machine.receive(record), machine: &machine)
        }
        do {
            for chunk in input.chunks where !closed {
                try processor.process(buffer: chunk, receive)
            }
            if !closed { try processor.finishProcessing(seenEOF: true, receive) }
        } catch {
            // A decoding error closes the connection: the expected outcome for bad bytes.
        }
        _ = machine.activeRequestCount
    }

    /// Performs an action as the connection would; false when the connection closes.
    private static func handle(_ action: FastCGIConnectionStateMachine.Action, machine: inout FastCGIConnectionStateMachine) -> Bool {
        switch action {
        case .none, .send, .stdin, .data:
            return true
        case .start(let id, let begin, let params, let inputComplete):
            guard buildEnviron(params: params, role: begin.role) else { return false }
            if inputComplete { machine.requestFinished(id) }
            return true
        case .endOfStream(let id, _, let inputComplete):
            if inputComplete { machine.requestFinished(id) }
            return true
        case .abort(let id):
            machine.requestFinished(id)
            return true
        case .abortedBeforeStart:
            return true
        case .close:
            return false
        }
    }

    /// The params stream through the pair decoder and the normalizer, as FastCGIConnection does.
    static func buildEnviron(params: ByteBuffer, role: FastCGIRole) -> Bool {
        var builder = EnvironBuilder(gatewayProtocol: .fastcgi, maxBytes: 4096)
        var decoder = FastCGINameValuePairDecoder(maxLength: 4096)
        var stream = params
        do {
            while let pair = try decoder.next(from: &stream) {
                builder.addVariable(name: pair.name.readableBytesView, value: pair.value.readableBytesView)
            }
        } catch {
            return false
        }
        guard stream.readableBytes == 0 else { return false }
        builder.setComputed("FCGI_ROLE", EnvironValue(role.description))
        _ = try? builder.finish()
        return true
    }
}
