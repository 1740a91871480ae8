// GatewayConfiguration.respond: the one place every adapter runs the application. What a thrown
// error becomes, what the log and the observer (access log, metrics) are told.
import Foundation
import Logging
import NIOCore
import PosternCore
import PosternEngine
import Synchronization
import Testing

@Suite("GatewayConfiguration.respond")
struct GatewayConfigurationTests {
    /// The levels of the log lines written through it.
    final class LogLevels: Sendable {
        private let levels = Mutex<[Logger.Level]>([])
        var all: [Logger.Level] { levels.withLock { $0 } }
        var logger: Logger {
            var logger = Logger(label: "test") { _ in Handler(levels: self) }
            logger.logLevel = .trace
            return logger
        }
        fileprivate func append(_ level: Logger.Level) { levels.withLock { $0.append(level) } }
    }

    struct Handler: LogHandler {
        let levels: LogLevels
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { levels.append(event.level) }
    }

    struct Throwing: Application {
        let error: any Error
        func respond(to environ: Environ) async throws -> Response { throw error }
    }

    @Test("an application that gives up because the client left mid-body: rethrown as cancellation, 499, no error line")
    func clientDisconnectedMidBody() async throws {
        let log = LogLevels()
        let observer = RecordingObserver()
        let errors = ErrorLog()
        var configuration = GatewayConfiguration(application: Throwing(error: RequestBodyError.disconnected))
        configuration.observer = observer
        await #expect(throws: CancellationError.self) {
            _ = try await configuration.respond(to: validEnviron(errors), logger: log.logger)
        }
        #expect(observer.statuses == [499])
        #expect(!log.all.contains { $0 >= .error }, "\(log.all)")
        #expect(errors.text.isEmpty)
    }

    @Test("any other application error: a plain 500, an error line in the log and on the error stream")
    func applicationError() async throws {
        let log = LogLevels()
        let observer = RecordingObserver()
        let errors = ErrorLog()
        var configuration = GatewayConfiguration(application: Throwing(error: RequestBodyError.lengthMismatch(expected: 10, received: 3)))
        configuration.observer = observer
        let response = try await configuration.respond(to: validEnviron(errors), logger: log.logger)
        #expect(response.status.code == 500)
        #expect(observer.statuses == [500])
        #expect(log.all.contains(.error))
        #expect(errors.text.contains("CONTENT_LENGTH is 10"))
    }
}

@Suite("PeerGone")
struct PeerGoneTests {
    @Test("closed channels, resets and broken pipes are the peer's doing; other errors are not")
    func classification() {
        #expect(PeerGone.describes(ChannelError.ioOnClosedChannel))
        #expect(PeerGone.describes(ChannelError.alreadyClosed))
        #expect(PeerGone.describes(IOError(errnoCode: ECONNRESET, reason: "write")))
        #expect(PeerGone.describes(IOError(errnoCode: EPIPE, reason: "write")))
        #expect(!PeerGone.describes(IOError(errnoCode: EMFILE, reason: "accept")))
        #expect(!PeerGone.describes(RequestBodyError.tooLarge(limit: 1)))
        #expect(!PeerGone.describes(CancellationError()))
    }
}
