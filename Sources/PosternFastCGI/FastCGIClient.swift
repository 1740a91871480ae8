import NIOCore
import NIOPosix
import PosternClient
import PosternCore

/// FastCGI 1.0 web-server side: a client that sends requests to any FastCGI application
/// (Postern, a libfcgi program, php-fpm), as nginx or mod_proxy_fcgi would.
///
/// One connection carries several requests at once, each with its own id (§3.3 multiplexing);
/// every request is sent with FCGI_KEEP_CONN unless asked otherwise, so the connection stays
/// open for the next.
public final class FastCGIClient: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<FastCGIClientHandler>

    private init(channel: any Channel, handler: NIOLoopBound<FastCGIClientHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Where a FastCGI application listens.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// Connects to `address`.
    public static func connect(
        to address: Endpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, setup: ClientChannelSetup? = nil
    ) async throws -> FastCGIClient {
        let initializer: @Sendable (any Channel) -> EventLoopFuture<(any Channel, NIOLoopBound<FastCGIClientHandler>)> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try setup?(channel)
                let handler = FastCGIClientHandler()
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FastCGIRecordDecoder()))
                try channel.pipeline.syncOperations.addHandler(handler)
                return (channel, NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
        }
        let bootstrap = ClientBootstrap(group: group)
        let (channel, handler): (any Channel, NIOLoopBound<FastCGIClientHandler>)
        switch address {
        case .tcp(let host, let port):
            (channel, handler) = try await bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port, channelInitializer: initializer)
        case .unix(let path):
            (channel, handler) = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
        }
        return FastCGIClient(channel: channel, handler: handler)
    }

    /// Sends one request and waits for its END_REQUEST.
    public func send(
        _ request: ClientRequest,
        role: FastCGIRole = .responder,
        keepConnection: Bool = true,
        filterData: ByteBuffer? = nil,
        sendsStdin: Bool = true
    ) async throws -> FastCGIClientResult {
        try await start(request, role: role, keepConnection: keepConnection, filterData: filterData, sendsStdin: sendsStdin).result()
    }

    /// Sends one request; the returned call gives its id, its result, and a way to abort it.
    ///
    /// - Parameters:
    ///   - sendsStdin: `false` sends no FCGI_STDIN at all, as mod_authnz_fcgi does for an AUTHORIZER.
    ///   - params: the PARAMS to send instead of `request.cgiVariables()`.
    public func start(
        _ request: ClientRequest,
        role: FastCGIRole = .responder,
        keepConnection: Bool = true,
        filterData: ByteBuffer? = nil,
        sendsStdin: Bool = true,
        params replacement: [(name: String, value: String)]? = nil
    ) async throws -> FastCGIClientCall {
        let promise = channel.eventLoop.makePromise(of: FastCGIClientResult.self)
        let handler = self.handler
        let channel = self.channel
        var encoded = ByteBuffer()
        for variable in replacement ?? request.cgiVariables() {
            FastCGINameValuePairs.write(name: variable.name, value: variable.value, into: &encoded)
        }
        let params = encoded
        let body = request.body
        let id = try await channel.eventLoop.submit { () throws -> UInt16 in
            let id: UInt16
            do {
                id = try handler.value.register(promise)
            } catch {
                promise.fail(error)
                throw error
            }
            var out = ByteBuffer()
            out.reserveCapacity(FastCGIRecordEncoder.streamLength(contentLength: params.readableBytes + body.readableBytes) + 64)
            FastCGIRecordEncoder.writeBeginRequest(requestID: id, role: role, keepConnection: keepConnection, into: &out)
            FastCGIRecordEncoder.writeStream(type: .params, requestID: id, content: params, into: &out)
            FastCGIRecordEncoder.writeStreamEnd(type: .params, requestID: id, into: &out)
            if sendsStdin {
                FastCGIRecordEncoder.writeStream(type: .stdin, requestID: id, content: body, into: &out)
                FastCGIRecordEncoder.writeStreamEnd(type: .stdin, requestID: id, into: &out)
            }
            if let filterData {
                FastCGIRecordEncoder.writeStream(type: .data, requestID: id, content: filterData, into: &out)
                FastCGIRecordEncoder.writeStreamEnd(type: .data, requestID: id, into: &out)
            }
            channel.writeAndFlush(out, promise: nil)
            return id
        }.get()
        return FastCGIClientCall(requestID: id, client: self, future: promise.futureResult)
    }

    /// Asks FCGI_GET_VALUES (§4.1) for `names`; returns the server's answers.
    public func getValues(_ names: [String]) async throws -> [String: String] {
        var query = ByteBuffer()
        for name in names { FastCGINameValuePairs.write(name: name, value: "", into: &query) }
        let reply = try await sendManagement(FastCGIRecord(type: .getValues, requestID: FastCGIRecord.managementID, content: query))
        guard reply.type == .getValuesResult else { throw FastCGIProtocolError.unexpectedType(reply.type) }
        var decoder = FastCGINameValuePairDecoder(maxLength: 65535)
        var result: [String: String] = [:]
        for pair in try decoder.decodeAll(reply.content) {
            result[String(buffer: pair.name)] = String(buffer: pair.value)
        }
        return result
    }

    /// Sends a management record (request id 0) and returns the server's next management record.
    public func sendManagement(_ record: FastCGIRecord) async throws -> FastCGIRecord {
        let promise = channel.eventLoop.makePromise(of: FastCGIRecord.self)
        let handler = self.handler
        let channel = self.channel
        try await channel.eventLoop.submit {
            do {
                try handler.value.registerManagement(promise)
            } catch {
                promise.fail(error)
                throw error
            }
            var out = ByteBuffer()
            FastCGIRecordEncoder.write(record, into: &out)
            channel.writeAndFlush(out, promise: nil)
        }.get()
        return try await promise.futureResult.get()
    }

    /// Sends FCGI_ABORT_REQUEST for `requestID` (§5.4).
    public func abort(requestID: UInt16) {
        var out = ByteBuffer()
        FastCGIRecordEncoder.writeHeader(type: .abortRequest, requestID: requestID, contentLength: 0, into: &out)
        channel.writeAndFlush(out, promise: nil)
    }

    /// Writes raw bytes: for tests that speak the protocol by hand.
    public func writeRaw(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes).get()
    }

    /// Whether the server has closed the connection (or it was closed here).
    public var isClosed: Bool { !channel.isActive }

    /// Resolves when the connection is closed.
    public func waitForClose() async {
        try? await channel.closeFuture.get()
    }

    public func close() async {
        try? await channel.close()
    }

    /// One request in flight.
    public struct FastCGIClientCall: Sendable {
        public let requestID: UInt16
        let client: FastCGIClient
        let future: EventLoopFuture<FastCGIClientResult>

        public func result() async throws -> FastCGIClientResult {
            try await future.get()
        }

        public func abort() {
            client.abort(requestID: requestID)
        }
    }
}

/// What a FastCGI application sent back for one request.
public struct FastCGIClientResult: Sendable {
    public var requestID: UInt16
    /// The FCGI_STDOUT stream: a CGI-style response.
    public var stdout: ByteBuffer
    /// The FCGI_STDERR stream.
    public var stderr: ByteBuffer
    public var appStatus: UInt32
    public var protocolStatus: FastCGIProtocolStatus

    /// The STDOUT stream parsed as a CGI response (RFC 3875 §6), STDERR as its error output.
    public func response() throws -> ClientResponse {
        guard protocolStatus == .requestComplete else { throw FastCGIClientError.rejected(protocolStatus) }
        var parser = CGIResponseHeadParser(mode: .cgi)
        switch try parser.feed(stdout) {
        case .needMore:
            throw CGIResponseHeadParser.ParseError.truncated
        case .head(let head, let body):
            return ClientResponse(status: head.status, headers: head.headers, body: body, errorOutput: String(buffer: stderr))
        }
    }
}

extension FastCGIClient {
    /// One request on a fresh connection without KEEP_CONN (as `postern request` sends it).
    public static func send(
        _ request: ClientRequest, to address: Endpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, setup: ClientChannelSetup? = nil
    ) async throws -> ClientResponse {
        let client = try await connect(to: address, group: group, setup: setup)
        do {
            let result = try await client.send(request, keepConnection: false)
            await client.close()
            return try result.response()
        } catch {
            await client.close()
            throw error
        }
    }
}
