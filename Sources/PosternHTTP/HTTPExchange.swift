import Logging
import NIOCore
import NIOHTTP1
import PosternCore
import PosternEngine

/// One HTTP request and its response on a connection.
struct HTTPExchange {
    let head: HTTPRequestHead
    let context: ConnectionContext
    let outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>

    var configuration: GatewayConfiguration { context.configuration }

    /// Serves the request; returns whether the connection may carry another.
    func run(reading iterator: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) async -> Bool {
        let limits = configuration.limits
        let isChunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        if head.headers.contains(name: "transfer-encoding") && head.headers.contains(name: "content-length") {
            return await refuse(RequestRefusal(.badRequest, "both Transfer-Encoding and Content-Length (RFC 9112 §6.3)"))
        }
        if head.headers.contains(name: "transfer-encoding") && !isChunked {
            return await refuse(RequestRefusal(.init(code: 501), "unsupported Transfer-Encoding"))
        }
        let normalized: EnvironBuilder.Result
        switch RequestBeginning.check(Result(catching: makeVariables), maxBodyBytes: limits.maxBodyBytes) {
        case .failure(let refusal):
            return await refuse(refusal)
        case .success(let result):
            normalized = result
        }
        let contentLength = normalized.contentLength
        let hasBody = isChunked || (contentLength ?? 0) > 0
        if hasBody, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            try? await outbound.write(.head(HTTPResponseHead(version: head.version, status: .continue)))
        }

        let (body, source) = RequestBody.makeStream(
            expectedLength: isChunked ? nil : (contentLength ?? 0),
            highWatermark: limits.bodyBufferBytes
        )
        let logger = context.logger
        let environ = Environ(
            normalized,
            gatewayProtocol: .http,
            body: body,
            errors: .logger(logger),
            flags: configuration.flags,
            connectionEntries: context.transportSecurity?.connectionEntries ?? [:]
        )
        let responder = HTTPResponder(head: head, context: context, outbound: outbound)

        guard hasBody else {
            // No body: the request's end came with its head, so nothing needs reading while the
            // application runs, and it runs in this task (no child task, no switches to it).
            source.finish()
            let requestIntact = await skipToEnd(&iterator)
            let response: Response
            do {
                response = try await configuration.respond(to: environ, logger: logger)
            } catch {
                return false
            }
            let keepAlive = await responder.send(response)
            return keepAlive && requestIntact
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                let response: Response
                do {
                    response = try await configuration.respond(to: environ, logger: logger)
                } catch {
                    source.discardUnread()
                    return false
                }
                let keepAlive = await responder.send(response)
                source.discardUnread()
                return keepAlive
            }
            // Feed the body in this task: the inbound iterator belongs to it.
            let requestIntact = await feedBody(source: source, iterator: &iterator, limit: limits.maxBodyBytes, group: &group)
            let keepAlive = await group.next() ?? false
            return keepAlive && requestIntact
        }
    }

    /// Moves body parts into the source until `.end`; `false` if the request ended badly.
    private func feedBody(
        source: RequestBodySource,
        iterator: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator,
        limit: Int,
        group: inout TaskGroup<Bool>
    ) async -> Bool {
        do {
            while let part = try await iterator.next() {
                switch part {
                case .body(let buffer):
                    if source.receivedBytes + buffer.readableBytes > limit {
                        context.logger.notice("request body over --max-body-bytes; closing", metadata: ["limit": "\(limit)"])
                        source.fail(RequestBodyError.tooLarge(limit: limit))
                        return false
                    }
                    if await source.yield(buffer) == .lengthExceeded { return false }
                case .end:
                    return source.finish() == nil
                case .head:
                    return false
                }
            }
        } catch {
            context.logger.debug("reading the request body failed", metadata: ["error": "\(error)"])
        }
        // The client went away mid-body: the application's task is cancelled.
        source.fail(RequestBodyError.disconnected)
        group.cancelAll()
        return false
    }

    private func skipToEnd(_ iterator: inout NIOAsyncChannelInboundStream<HTTPServerRequestPart>.AsyncIterator) async -> Bool {
        while let part = try? await iterator.next() {
            switch part {
            case .end: return true
            case .body: continue
            case .head: return false
            }
        }
        return false
    }

    /// The CGI variables for this request, as a front-end would set them (RFC 3875 §4.1).
    func makeVariables() throws(NormalizationError) -> EnvironBuilder.Result {
        guard var builder = HTTPRequestVariables.builder(for: head, maxBytes: configuration.limits.maxHeaderBytes) else {
            throw .invalid("request target")
        }
        builder.setComputed("SERVER_PROTOCOL", head.version == .http1_1 ? "HTTP/1.1" : EnvironValue("HTTP/\(head.version.major).\(head.version.minor)"))
        builder.setComputed("GATEWAY_INTERFACE", "CGI/1.1")
        builder.setComputed("SERVER_SOFTWARE", EnvironValue(configuration.serverSoftware))
        let hostHeader = head.headers.first(name: "host")
        builder.setComputed("SERVER_NAME", EnvironValue(hostHeader.map(Self.hostWithoutPort) ?? context.localIP ?? "localhost"))
        builder.setComputed("SERVER_PORT", EnvironValue(String(context.localPort ?? 0)))
        if let ip = context.remoteIP { builder.setComputed("REMOTE_ADDR", EnvironValue(ip)) }
        if let port = context.remotePort { builder.setComputed("REMOTE_PORT", EnvironValue(String(port))) }
        if let ip = context.localIP { builder.setComputed("SERVER_ADDR", EnvironValue(ip)) }
        if let security = context.transportSecurity {
            // `--https`: the client is the TLS peer; mod_ssl's variables (HTTPS=on, SSL_*).
            builder.setComputed("REQUEST_SCHEME", "https")
            for variable in security.variables { builder.setComputed(variable.name, EnvironValue(variable.value)) }
        } else {
            builder.setComputed("REQUEST_SCHEME", "http")
        }
        return try (consume builder).finish()
    }

    /// `example.com:8080` → `example.com`; `[::1]:8080` → `::1`.
    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.lastIndex(of: ":") { return String(host[..<colon]) }
        return host
    }

    /// Answers with an error status and closes; logs why.
    private func refuse(_ refusal: RequestRefusal) async -> Bool {
        let response = configuration.response(refusing: refusal, logger: context.logger)
        configuration.observer?.requestRefused(
            HTTPRefusal.record(
                status: refusal.status.code, context: context,
                method: head.method.rawValue, target: head.uri, serverProtocol: "HTTP/\(head.version.major).\(head.version.minor)"))
        let responder = HTTPResponder(head: head, context: context, outbound: outbound)
        _ = await responder.send(response, forceClose: true)
        return false
    }
}
