import NIOCore

/// The application side of one FastCGI connection as a value: records in, actions out (FastCGI 1.0 §3–§6).
///
/// It tracks every request id on the connection through its states and answers the management
/// records itself; the handler performs the actions (start the application, feed its streams,
/// write bytes, close). It never performs I/O, so tests drive it with plain records.
///
/// ```
///  BEGIN_REQUEST ──► .params ──(empty PARAMS)──► .running(stdin open, data open) ──► END_REQUEST sent
///                      │  PARAMS appended              │ STDIN/DATA fed; empty record ends each
///                      └───────── ABORT_REQUEST ───────┴──► .abort (the handler ends the request)
/// ```
/// Departures from the letter of the spec, on purpose:
/// - An AUTHORIZER has no body, and mod_authnz_fcgi sends no FCGI_STDIN at all: its input is
///   complete when PARAMS end; STDIN records that still come are ignored.
/// - A RESPONDER's DATA records (meaningless for it) are ignored; a FILTER's input is complete
///   once both STDIN and DATA have ended.
public struct FastCGIConnectionStateMachine: Sendable {
    /// What one request id is doing.
    enum RequestState: Sendable {
        /// Collecting the PARAMS stream.
        case params(FastCGIBeginRequest, stream: ByteBuffer, records: Int)
        /// The application runs; which input streams are still open.
        case running(FastCGIBeginRequest, stdinOpen: Bool, dataOpen: Bool)
    }

    public struct Limits: Sendable {
        /// FCGI_MAX_REQS: concurrent requests on this connection.
        public var maxRequests: Int
        /// FCGI_MAX_CONNS, as GET_VALUES reports it.
        public var maxConnections: Int
        /// Bytes of one request's PARAMS stream.
        public var maxParamsBytes: Int
        /// Records of one request's PARAMS stream.
        public var maxParamsRecords: Int

        public init(maxRequests: Int, maxConnections: Int, maxParamsBytes: Int, maxParamsRecords: Int) {
            self.maxRequests = maxRequests
            self.maxConnections = maxConnections
            self.maxParamsBytes = maxParamsBytes
            self.maxParamsRecords = maxParamsRecords
        }
    }

    public enum Action: Sendable {
        /// Nothing to do.
        case none
        /// Write these bytes (management answers, an END_REQUEST refusing a request).
        case send(ByteBuffer)
        /// PARAMS ended: start the application with these params (the joined stream).
        /// `inputComplete` is true when no STDIN (or DATA) will be read: an AUTHORIZER.
        case start(requestID: UInt16, FastCGIBeginRequest, params: ByteBuffer, inputComplete: Bool)
        /// Body bytes for a running request.
        case stdin(requestID: UInt16, ByteBuffer)
        /// FCGI_DATA bytes for a running FILTER.
        case data(requestID: UInt16, ByteBuffer)
        /// The STDIN (`isData` false) or DATA stream ended; `inputComplete` when all input has.
        case endOfStream(requestID: UInt16, isData: Bool, inputComplete: Bool)
        /// ABORT_REQUEST for a running request: cancel it; it answers with END_REQUEST.
        case abort(requestID: UInt16)
        /// ABORT_REQUEST during PARAMS: the request never started; END_REQUEST is in the bytes.
        case abortedBeforeStart(ByteBuffer)
        /// The peer broke a rule: close this connection and log why.
        case close(FastCGIProtocolError)
    }

    public let limits: Limits
    private var requests: [UInt16: RequestState] = [:]

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Requests begun and not yet finished.
    public var activeRequestCount: Int { requests.count }

    /// Whether `requestID` is known (begun, not finished).
    public func isActive(_ requestID: UInt16) -> Bool { requests[requestID] != nil }

    /// The handler wrote END_REQUEST for `requestID`: the id is free again (§3.3).
    public mutating func requestFinished(_ requestID: UInt16) {
        requests[requestID] = nil
    }

    public mutating func receive(_ record: FastCGIRecord) -> Action {
        if record.isManagement {
            return receiveManagement(record)
        }
        let id = record.requestID
        switch record.type {
        case .beginRequest:
            return begin(record)
        case .params:
            guard case .params(let begin, var stream, let records)? = requests[id] else {
                if requests[id] == nil { return .none }  // §3.3: ignore inactive ids
                return .close(.outOfOrder(.params, id))
            }
            if record.content.readableBytes == 0 {
                let inputComplete = begin.role == .authorizer
                requests[id] = .running(begin, stdinOpen: !inputComplete, dataOpen: begin.role == .filter)
                return .start(requestID: id, begin, params: stream, inputComplete: inputComplete)
            }
            guard records < limits.maxParamsRecords else { return .close(.tooManyParamsRecords(limit: limits.maxParamsRecords)) }
            guard stream.readableBytes + record.content.readableBytes <= limits.maxParamsBytes else {
                return .close(.paramsTooLarge(limit: limits.maxParamsBytes))
            }
            requests[id] = nil  // keep `stream` uniquely referenced while appending
            if stream.readableBytes == 0 {
                stream = record.content
            } else {
                var content = record.content
                stream.writeBuffer(&content)
            }
            requests[id] = .params(begin, stream: stream, records: records + 1)
            return .none
        case .stdin, .data:
            let isData = record.type == .data
            switch requests[id] {
            case nil:
                return .none
            case .params?:
                return .close(.outOfOrder(record.type, id))
            case .running(let begin, var stdinOpen, var dataOpen)?:
                if isData ? !dataOpen : !stdinOpen {
                    return .none  // an AUTHORIZER's stray STDIN, a RESPONDER's DATA, bytes after the end
                }
                if record.content.readableBytes > 0 {
                    return isData ? .data(requestID: id, record.content) : .stdin(requestID: id, record.content)
                }
                if isData { dataOpen = false } else { stdinOpen = false }
                requests[id] = .running(begin, stdinOpen: stdinOpen, dataOpen: dataOpen)
                return .endOfStream(requestID: id, isData: isData, inputComplete: !stdinOpen && !dataOpen)
            }
        case .abortRequest:
            switch requests[id] {
            case nil:
                return .none
            case .params?:
                requests[id] = nil
                var out = ByteBuffer()
                FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: .requestComplete, into: &out)
                return .abortedBeforeStart(out)
            case .running?:
                return .abort(requestID: id)
            }
        case .getValues, .unknownType, .getValuesResult:
            return .close(.managementTypeOnRequest(record.type, id))
        default:
            return .close(.unexpectedType(record.type))
        }
    }

    private mutating func begin(_ record: FastCGIRecord) -> Action {
        let id = record.requestID
        let begin: FastCGIBeginRequest
        do {
            begin = try FastCGIBeginRequest(parsing: record.content)
        } catch {
            return .close(error)
        }
        guard requests[id] == nil else { return .close(.duplicateRequestID(id)) }
        var out = ByteBuffer()
        guard begin.role == .responder || begin.role == .authorizer || begin.role == .filter else {
            FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: .unknownRole, into: &out)
            return .send(out)
        }
        guard requests.count < limits.maxRequests else {
            FastCGIRecordEncoder.writeEndRequest(requestID: id, appStatus: 0, protocolStatus: .overloaded, into: &out)
            return .send(out)
        }
        requests[id] = .params(begin, stream: ByteBuffer(), records: 0)
        return .none
    }

    /// §4.1 GET_VALUES → GET_VALUES_RESULT with the variables we know; §4.2 anything else
    /// unknown → UNKNOWN_TYPE. Stream types on id 0 are a protocol error.
    private func receiveManagement(_ record: FastCGIRecord) -> Action {
        var out = ByteBuffer()
        switch record.type {
        case .getValues:
            var decoder = FastCGINameValuePairDecoder(maxLength: 1024)
            let pairs: [(name: ByteBuffer, value: ByteBuffer)]
            do {
                pairs = try decoder.decodeAll(record.content)
            } catch {
                return .close(error)
            }
            var answers: [(name: String, value: String)] = []
            for pair in pairs {
                let name = String(buffer: pair.name)
                switch name {
                case "FCGI_MAX_CONNS": answers.append((name, String(limits.maxConnections)))
                case "FCGI_MAX_REQS": answers.append((name, String(limits.maxRequests)))
                case "FCGI_MPXS_CONNS": answers.append((name, "1"))
                default: continue  // §4.1: unknown names are omitted from the reply
                }
            }
            FastCGIRecordEncoder.writeValues(type: .getValuesResult, answers, into: &out)
            return .send(out)
        case .beginRequest, .abortRequest, .params, .stdin, .data, .stdout, .stderr, .endRequest:
            return .close(.outOfOrder(record.type, 0))
        default:
            FastCGIRecordEncoder.writeUnknownType(record.type, into: &out)
            return .send(out)
        }
    }
}
