// The connection state machine driven with plain records (FastCGI 1.0 §3.3, §4, §5).
import NIOCore
import PosternFastCGI
import Testing

@Suite("FastCGI connection state machine")
struct StateMachineTests {
    static let limits = FastCGIConnectionStateMachine.Limits(maxRequests: 2, maxConnections: 10, maxParamsBytes: 64, maxParamsRecords: 3)

    func begin(_ id: UInt16, role: FastCGIRole = .responder, keep: Bool = true) -> FastCGIRecord {
        var content = ByteBuffer()
        content.writeMultipleIntegers(role.rawValue, UInt8(keep ? 1 : 0), UInt8(0), UInt32(0))
        return FastCGIRecord(type: .beginRequest, requestID: id, content: content)
    }

    func record(_ type: FastCGIRecordType, _ id: UInt16, _ text: String = "") -> FastCGIRecord {
        FastCGIRecord(type: type, requestID: id, content: ByteBuffer(string: text))
    }

    func sentRecords(_ action: FastCGIConnectionStateMachine.Action) throws -> [FastCGIRecord] {
        guard case .send(let bytes) = action else { throw TestFailure("expected .send, got \(action)") }
        return try decodeAll(bytes, byteByByte: false)
    }

    @Test("PARAMS records are joined; the empty one starts the request; STDIN is fed then ended")
    func responderFlow() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        guard case .none = machine.receive(begin(1)) else { throw TestFailure("begin") }
        guard case .none = machine.receive(record(.params, 1, "\u{1}\u{1}A")) else { throw TestFailure("params") }
        guard case .none = machine.receive(record(.params, 1, "b")) else { throw TestFailure("params 2") }
        guard case .start(1, let beginRequest, let params, let inputComplete) = machine.receive(record(.params, 1)) else { throw TestFailure("start") }
        #expect(beginRequest.role == .responder && beginRequest.keepConnection)
        #expect(String(buffer: params) == "\u{1}\u{1}Ab")
        #expect(!inputComplete)
        guard case .stdin(1, let body) = machine.receive(record(.stdin, 1, "hi")) else { throw TestFailure("stdin") }
        #expect(String(buffer: body) == "hi")
        guard case .endOfStream(1, false, true) = machine.receive(record(.stdin, 1)) else { throw TestFailure("end") }
        #expect(machine.activeRequestCount == 1)
        machine.requestFinished(1)
        #expect(machine.activeRequestCount == 0)
        // A stray record for the finished id is ignored (§3.3).
        guard case .none = machine.receive(record(.stdin, 1, "late")) else { throw TestFailure("stray") }
    }

    @Test("an AUTHORIZER's input is complete when PARAMS end; a FILTER waits for DATA too")
    func rolesInput() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        _ = machine.receive(begin(1, role: .authorizer))
        guard case .start(1, _, _, true) = machine.receive(record(.params, 1)) else { throw TestFailure("authorizer") }
        guard case .none = machine.receive(record(.stdin, 1, "ignored")) else { throw TestFailure("authorizer stdin") }
        _ = machine.receive(begin(2, role: .filter))
        guard case .start(2, _, _, false) = machine.receive(record(.params, 2)) else { throw TestFailure("filter") }
        guard case .endOfStream(2, false, false) = machine.receive(record(.stdin, 2)) else { throw TestFailure("filter stdin end") }
        guard case .data(2, _) = machine.receive(record(.data, 2, "file")) else { throw TestFailure("filter data") }
        guard case .endOfStream(2, true, true) = machine.receive(record(.data, 2)) else { throw TestFailure("filter data end") }
    }

    @Test("GET_VALUES is answered with FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS; unknown names omitted")
    func getValues() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        var query = ByteBuffer()
        for name in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS", "OTHER"] {
            FastCGINameValuePairs.write(name: name, value: "", into: &query)
        }
        let records = try sentRecords(machine.receive(FastCGIRecord(type: .getValues, requestID: 0, content: query)))
        #expect(records.count == 1 && records[0].type == .getValuesResult && records[0].requestID == 0)
        var decoder = FastCGINameValuePairDecoder(maxLength: 100)
        let pairs = try decoder.decodeAll(records[0].content).map { (String(buffer: $0.name), String(buffer: $0.value)) }
        #expect(pairs.map(\.0) == ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
        #expect(pairs.map(\.1) == ["10", "2", "1"])
    }

    @Test("an unknown management type gets UNKNOWN_TYPE carrying its type byte")
    func unknownType() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        let records = try sentRecords(machine.receive(record(FastCGIRecordType(rawValue: 99), 0)))
        #expect(records.count == 1 && records[0].type == .unknownType)
        #expect(records[0].content.getInteger(at: records[0].content.readerIndex, as: UInt8.self) == 99)
    }

    @Test("beyond FCGI_MAX_REQS a request gets OVERLOADED; an unknown role UNKNOWN_ROLE")
    func refusals() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        _ = machine.receive(begin(1))
        _ = machine.receive(begin(2))
        let overloaded = try sentRecords(machine.receive(begin(3)))
        #expect(overloaded[0].type == .endRequest && overloaded[0].requestID == 3)
        #expect(try FastCGIEndRequest(parsing: overloaded[0].content).protocolStatus == .overloaded)
        machine.requestFinished(1)
        let unknownRole = try sentRecords(machine.receive(begin(4, role: FastCGIRole(rawValue: 9))))
        #expect(try FastCGIEndRequest(parsing: unknownRole[0].content).protocolStatus == .unknownRole)
        #expect(!machine.isActive(4))
    }

    @Test("ABORT_REQUEST: before PARAMS end it answers END_REQUEST; while running it aborts")
    func abort() throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        _ = machine.receive(begin(1))
        guard case .abortedBeforeStart(let bytes) = machine.receive(record(.abortRequest, 1)) else { throw TestFailure("abort early") }
        #expect(try decodeAll(bytes, byteByByte: false).map(\.type) == [.endRequest])
        #expect(!machine.isActive(1))
        _ = machine.receive(begin(1))
        _ = machine.receive(record(.params, 1))
        guard case .abort(1) = machine.receive(record(.abortRequest, 1)) else { throw TestFailure("abort running") }
    }

    @Test("rule breaks close the connection", arguments: [0, 1, 2, 3, 4])
    func ruleBreaks(case index: Int) throws {
        var machine = FastCGIConnectionStateMachine(limits: Self.limits)
        _ = machine.receive(begin(1))
        let action: FastCGIConnectionStateMachine.Action
        switch index {
        case 0: action = machine.receive(begin(1))  // duplicate id
        case 1: action = machine.receive(record(.stdin, 1, "early"))  // STDIN before PARAMS end
        case 2: action = machine.receive(record(.params, 1, String(repeating: "x", count: 65)))  // over 64 bytes
        case 3:
            for _ in 0..<3 { _ = machine.receive(record(.params, 1, "x")) }
            action = machine.receive(record(.params, 1, "x"))  // a 4th record
        default: action = machine.receive(record(.stdout, 1, "wrong way"))
        }
        guard case .close(let error) = action else { throw TestFailure("expected close, got \(action)") }
        let expected: [FastCGIProtocolError] = [
            .duplicateRequestID(1), .outOfOrder(.stdin, 1), .paramsTooLarge(limit: 64), .tooManyParamsRecords(limit: 3), .unexpectedType(.stdout),
        ]
        #expect(error == expected[index])
    }
}
