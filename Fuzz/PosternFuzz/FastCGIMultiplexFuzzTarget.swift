// The FastCGI multiplexing fuzz target: well-formed records for several request ids at once,
// interleaved with aborts and with the application finishing, so the fuzzer spends its time in
// the connection state machine's states rather than in the record framing (fuzz-fastcgi's part).
import NIOCore
import PosternFastCGI

public enum FastCGIMultiplexFuzzTarget {
    static let limits = FastCGIConnectionStateMachine.Limits(maxRequests: 3, maxConnections: 8, maxParamsBytes: 64, maxParamsRecords: 6)

    /// What the test knows of one request id, from what it sent and what the machine answered.
    enum Known {
        /// Begun; the PARAMS bytes sent so far.
        case params(ByteBuffer)
        /// Started (the application runs); whether an abort was passed on to it.
        case running(aborted: Bool)
    }

    /// Reads the input as (operation, argument) pairs, each one record or one application event
    /// for request ids 1...5, and traps when the machine's answer breaks a promise:
    /// - no more than `maxRequests` requests at once; the count is the requests begun and not finished;
    /// - `.start` once per request, with exactly the PARAMS bytes sent for it, never for an id not begun;
    /// - body bytes, ends of streams and aborts only for a running request, body bytes as sent;
    /// - `.abortedBeforeStart` only for a request still in PARAMS; a finished id is free again.
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        var machine = FastCGIConnectionStateMachine(limits: limits)
        var known: [UInt16: Known] = [:]
        var index = 0
        while index + 1 < data.count {
            let operation = data[index]
            let argument = data[index + 1]
            index += 2
            let id = UInt16(argument % 5) + 1
            // Content for PARAMS, STDIN and DATA: 0...7 bytes taken from the argument.
            let content = ByteBuffer(repeating: argument | 0x20, count: Int(argument >> 5))
            let record: FastCGIRecord
            switch operation % 10 {
            case 0:
                var body = ByteBuffer()
                let roles: [UInt16] = [1, 2, 3, 9]
                body.writeInteger(roles[Int(operation >> 4) % 4])
                body.writeInteger(UInt8(operation >> 7))
                body.writeRepeatingByte(0, count: 5)
                record = FastCGIRecord(type: .beginRequest, requestID: id, content: body)
            case 1: record = FastCGIRecord(type: .params, requestID: id, content: content)
            case 2: record = FastCGIRecord(type: .params, requestID: id)
            case 3: record = FastCGIRecord(type: .stdin, requestID: id, content: content)
            case 4: record = FastCGIRecord(type: .stdin, requestID: id)
            case 5: record = FastCGIRecord(type: .data, requestID: id, content: operation & 0x80 == 0 ? content : ByteBuffer())
            case 6: record = FastCGIRecord(type: .abortRequest, requestID: id)
            case 7:
                // The application ends (answered, or cancelled by an abort): END_REQUEST goes out.
                if case .running? = known[id] {
                    machine.requestFinished(id)
                    known[id] = nil
                    precondition(!machine.isActive(id), "a finished request is still active")
                }
                continue
            case 8:
                var pairs = ByteBuffer()
                FastCGINameValuePairs.write(name: "FCGI_MAX_REQS", value: "", into: &pairs)
                record = FastCGIRecord(type: .getValues, requestID: 0, content: pairs)
            default:
                record = FastCGIRecord(type: FastCGIRecordType(rawValue: operation >> 4), requestID: argument & 1 == 0 ? 0 : id, content: content)
            }
            let sent = record
            switch machine.receive(record) {
            case .none:
                if sent.type == .beginRequest, known[id] == nil, machine.isActive(id) { known[id] = .params(ByteBuffer()) }
                if sent.type == .params, sent.content.readableBytes > 0, case .params(var stream)? = known[id] {
                    var more = sent.content
                    stream.writeBuffer(&more)
                    known[id] = .params(stream)
                }
            case .send:
                precondition(sent.type == .beginRequest || sent.isManagement, "bytes sent for a \(sent.type) record")
            case .start(let startedID, _, let params, _):
                guard case .params(let stream)? = known[startedID] else { preconditionFailure("started request \(startedID), not begun") }
                precondition(startedID == id && sent.type == .params && params == stream, "start with other PARAMS than those sent")
                known[startedID] = .running(aborted: false)
            case .stdin(let bodyID, let bytes), .data(let bodyID, let bytes):
                guard case .running? = known[bodyID] else { preconditionFailure("body bytes for request \(bodyID), not running") }
                precondition(bodyID == id && bytes == sent.content, "body bytes other than those sent")
            case .endOfStream(let bodyID, _, _):
                guard case .running? = known[bodyID] else { preconditionFailure("end of stream for request \(bodyID), not running") }
            case .abort(let abortedID):
                guard case .running? = known[abortedID] else { preconditionFailure("abort for request \(abortedID), not running") }
                known[abortedID] = .running(aborted: true)
            case .abortedBeforeStart:
                guard case .params? = known[id] else { preconditionFailure("aborted before start: request \(id) was not in PARAMS") }
                known[id] = nil
            case .close:
                return
            }
            precondition(machine.activeRequestCount == known.count, "active \(machine.activeRequestCount), known \(known.count)")
            precondition(machine.activeRequestCount <= limits.maxRequests, "more requests than FCGI_MAX_REQS")
        }
    }
}
