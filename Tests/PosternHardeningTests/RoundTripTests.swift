// Round-trip properties: what each encoder writes, the matching decoder gives back, however fed.
import NIOCore
import PosternCore
import PosternFastCGI
import PosternSCGI
import PosternUWSGI
import Testing

extension Hardening {
    @Suite("Round trips: encode then decode gives back the input")
    struct RoundTripTests {
        static let seeds: [UInt64] = [1, 2, 3, 0xC0FFEE, 0x5EED_0009]

        @Test("FastCGI records of random type, id and length, fed in random chunks", arguments: seeds)
        func fastCGIRecords(seed: UInt64) throws {
            var random = SeededGenerator(seed: seed)
            var records: [FastCGIRecord] = []
            var wire = ByteBuffer()
            for _ in 0..<40 {
                let record = FastCGIRecord(
                    type: FastCGIRecordType(rawValue: UInt8.random(in: 1...11, using: &random)),
                    requestID: UInt16.random(in: 0...UInt16.max, using: &random),
                    content: ByteBuffer(bytes: random.bytes(random.length(upTo: FastCGIRecord.maxContentLength)))
                )
                records.append(record)
                FastCGIRecordEncoder.write(record, into: &wire)
            }
            let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
            var decoded: [FastCGIRecord] = []
            for chunk in random.chunks(Array(wire.readableBytesView)) {
                try processor.process(buffer: ByteBuffer(bytes: chunk)) { decoded.append($0) }
            }
            try processor.finishProcessing(seenEOF: true) { decoded.append($0) }
            let same = decoded == records
            #expect(
                same,
                "seed \(seed): \(decoded.count) of \(records.count) records, first difference at \(zip(decoded, records).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)"
            )
        }

        @Test("FastCGI params straddling PARAMS records come back through the state machine", arguments: seeds)
        func fastCGIParams(seed: UInt64) throws {
            var random = SeededGenerator(seed: seed)
            var pairs: [([UInt8], [UInt8])] = []
            var stream = ByteBuffer()
            for _ in 0..<30 {
                let name = random.bytes(max(1, random.length(upTo: 300)))
                let value = random.bytes(random.length(upTo: 70_000))
                pairs.append((name, value))
                FastCGINameValuePairs.write(name: name, value: value, into: &stream)
            }
            // Cut the stream at random points, as a front-end may, into PARAMS records.
            var wire = ByteBuffer()
            FastCGIRecordEncoder.writeBeginRequest(requestID: 7, role: .responder, keepConnection: true, into: &wire)
            var rest = stream
            while rest.readableBytes > 0 {
                let slice = rest.readSlice(length: min(rest.readableBytes, Int.random(in: 1...FastCGIRecord.maxContentLength, using: &random)))!
                FastCGIRecordEncoder.write(FastCGIRecord(type: .params, requestID: 7, content: slice), into: &wire)
            }
            FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: 7, into: &wire)

            var machine = FastCGIConnectionStateMachine(limits: .init(maxRequests: 1, maxConnections: 1, maxParamsBytes: 8 << 20, maxParamsRecords: 4096))
            let processor = NIOSingleStepByteToMessageProcessor(FastCGIRecordDecoder())
            var started: ByteBuffer?
            for chunk in random.chunks(Array(wire.readableBytesView)) {
                try processor.process(buffer: ByteBuffer(bytes: chunk)) { record in
                    if case .start(_, _, let params, _) = machine.receive(record) { started = params }
                }
            }
            let params = try #require(started)
            var decoder = FastCGINameValuePairDecoder(maxLength: 1 << 20)
            let decoded = try decoder.decodeAll(params).map { (Array($0.name.readableBytesView), Array($0.value.readableBytesView)) }
            let same = decoded.count == pairs.count && zip(decoded, pairs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            #expect(same, "seed \(seed): \(decoded.count) of \(pairs.count) pairs came back intact")
        }

        @Test("SCGI netstrings and bodies, fed in random chunks", arguments: seeds)
        func scgi(seed: UInt64) throws {
            var random = SeededGenerator(seed: seed)
            for _ in 0..<20 {
                let variables = (0..<Int.random(in: 0...20, using: &random)).map { index in
                    (name: "V\(index)_" + random.text(random.length(upTo: 40)), value: random.text(random.length(upTo: 2000)))
                }
                let body = random.bytes(random.length(upTo: 70_000))
                var wire = try SCGIRequestEncoder.encodeHead(variables: variables, contentLength: body.count)
                wire.writeBytes(body)
                let processor = NIOSingleStepByteToMessageProcessor(SCGIRequestDecoder())
                var head: SCGIRequestHead?
                var received: [UInt8] = []
                var sawLast = false
                for chunk in random.chunks(Array(wire.readableBytesView)) {
                    try processor.process(buffer: ByteBuffer(bytes: chunk)) { part in
                        switch part {
                        case .head(let h, _): head = h
                        case .body(let bytes, let isLast):
                            received += bytes.readableBytesView
                            sawLast = sawLast || isLast
                        }
                    }
                }
                try processor.finishProcessing(seenEOF: true) { _ in }
                let decoded = try #require(head)
                let expected = [("CONTENT_LENGTH", String(body.count)), ("SCGI", "1")] + variables.map { ($0.name, $0.value) }
                let names = decoded.headers.map { String(decoding: $0.name, as: UTF8.self) }
                let values = decoded.headers.map { String(decoding: $0.value, as: UTF8.self) }
                #expect(names == expected.map(\.0) && values == expected.map(\.1), "seed \(seed)")
                #expect(decoded.contentLength == body.count)
                let sameBody = received == body
                #expect(sameBody && (sawLast || body.isEmpty), "seed \(seed): body of \(received.count)/\(body.count) bytes")
            }
        }

        @Test("uwsgi packets and bodies, fed in random chunks", arguments: seeds)
        func uwsgi(seed: UInt64) throws {
            var random = SeededGenerator(seed: seed)
            for _ in 0..<20 {
                var size = 0
                var variables: [(name: String, value: String)] = []
                for index in 0..<Int.random(in: 0...20, using: &random) {
                    let variable = (name: "V\(index)_" + random.text(random.length(upTo: 40)), value: random.text(random.length(upTo: 2000)))
                    size += 4 + variable.name.utf8.count + variable.value.utf8.count
                    if size > 60_000 { break }
                    variables.append(variable)
                }
                let body = random.bytes(random.length(upTo: 70_000))
                var wire = try UWSGIRequestEncoder.encodeHead(variables: variables, contentLength: body.count)
                wire.writeBytes(body)
                let processor = NIOSingleStepByteToMessageProcessor(UWSGIRequestDecoder())
                var head: UWSGIRequestHead?
                var received: [UInt8] = []
                for chunk in random.chunks(Array(wire.readableBytesView)) {
                    try processor.process(buffer: ByteBuffer(bytes: chunk)) { part in
                        switch part {
                        case .head(let h, _): head = h
                        case .body(let bytes, _): received += bytes.readableBytesView
                        }
                    }
                }
                try processor.finishProcessing(seenEOF: true) { _ in }
                let decoded = try #require(head)
                let expected = [("CONTENT_LENGTH", String(body.count))] + variables.map { ($0.name, $0.value) }
                let keys = decoded.variables.map { String(decoding: $0.key, as: UTF8.self) }
                let values = decoded.variables.map { String(decoding: $0.value, as: UTF8.self) }
                #expect(keys == expected.map(\.0) && values == expected.map(\.1), "seed \(seed)")
                let sameBody = received == body
                #expect(sameBody, "seed \(seed): body of \(received.count)/\(body.count) bytes")
            }
        }
    }
}
