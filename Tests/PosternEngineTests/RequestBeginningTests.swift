import Logging
import PosternCore
import PosternEngine
import Testing

/// The beginning every path shares, as a value: variables in, the normalized request or the
/// refusal out.
@Suite struct RequestBeginningTests {
    static func variables(contentLength: String? = nil, method: String = "GET") -> Result<EnvironBuilder.Result, NormalizationError> {
        var builder = EnvironBuilder(gatewayProtocol: .scgi)
        builder.addVariable(name: "REQUEST_METHOD", value: method)
        if let contentLength { builder.addVariable(name: "CONTENT_LENGTH", value: contentLength) }
        do {
            return .success(try builder.finish())
        } catch {
            return .failure(error)
        }
    }

    @Test func aRequestWhoseBodyMatchesItsLengthPasses() throws {
        let passed = try RequestBeginning.check(Self.variables(contentLength: "5"), framedBodyLength: 5).get()
        #expect(passed.contentLength == 5)
        let empty = try RequestBeginning.check(Self.variables(), framedBodyLength: 0).get()
        #expect(empty.contentLength == nil)
    }

    @Test func aBodyFramedAtAnotherLengthIsRefused() {
        let refused = RequestBeginning.check(Self.variables(contentLength: "5"), framedBodyLength: 6)
        #expect(refused.refusal == RequestRefusal(.badRequest, "CONTENT_LENGTH disagrees with the body's framing"))
        // No CONTENT_LENGTH means no body: a framed one is refused too.
        #expect(RequestBeginning.check(Self.variables(), framedBodyLength: 3).failureStatus == 400)
    }

    @Test func aBrokenNormalizerRuleIsA400WithItsReason() {
        let broken = Self.variables(contentLength: "12abc")
        guard case .failure(let error) = broken else {
            Issue.record("the normalizer accepted CONTENT_LENGTH 12abc")
            return
        }
        #expect(RequestBeginning.check(broken).refusal == RequestRefusal(.badRequest, error.description))
    }

    @Test func aDeclaredBodyOverTheLimitIsA413WhereThePathChecksIt() {
        #expect(RequestBeginning.check(Self.variables(contentLength: "2048"), maxBodyBytes: 1024).failureStatus == 413)
        #expect((try? RequestBeginning.check(Self.variables(contentLength: "1024"), maxBodyBytes: 1024).get()) != nil)
        // Where the decoder enforces the limit itself, no limit is given here.
        #expect((try? RequestBeginning.check(Self.variables(contentLength: "2048")).get()) != nil)
    }

    @Test func aRefusalIsAnsweredWithItsStatusAndTheReasonOnlyWithDebug() {
        let refusal = RequestRefusal(.badRequest, "CONTENT_LENGTH disagrees with the body's framing")
        let app = ApplicationFunction { _ in .text("never") }
        let quiet = GatewayConfiguration(application: app).response(refusing: refusal, logger: .init(label: "test"))
        #expect(quiet.status.code == 400)
        #expect(quiet.bodyText.map { !$0.contains("CONTENT_LENGTH") } == true)
        let debug = GatewayConfiguration(application: app, debug: true).response(refusing: refusal, logger: .init(label: "test"))
        #expect(debug.status.code == 400)
        #expect(debug.bodyText?.contains("CONTENT_LENGTH disagrees") == true)
    }
}

extension Result where Success == EnvironBuilder.Result, Failure == RequestRefusal {
    var refusal: RequestRefusal? {
        if case .failure(let refusal) = self { return refusal }
        return nil
    }

    var failureStatus: Int? { refusal?.status.code }
}

extension Response {
    /// The body of a response in hand, as text.
    var bodyText: String? {
        guard case .bytes(let bytes) = body.storage else { return nil }
        return String(decoding: bytes.readableBytesView, as: UTF8.self)
    }
}
