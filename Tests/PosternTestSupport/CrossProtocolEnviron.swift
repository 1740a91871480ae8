import Foundation
import Logging
import NIOCore
import Postern
import PosternApps
import PosternCLI
import PosternClient
import PosternCore

/// The same request through several protocols must reach the application as the same environ.
///
/// Serves ``EnvironDump`` from ONE ``GatewayServer`` with a loopback listener per protocol,
/// sends `request` through each (HTTP with ``TestHTTPClient``, every other protocol through
/// ``ProtocolClients``, so a protocol whose client is wired there joins by adding it to the
/// list), and returns each protocol's *core view* of the environ:
///
/// - REQUEST_METHOD, QUERY_STRING, CONTENT_TYPE, CONTENT_LENGTH, PATH_INFO, SCRIPT_NAME
///   (`<absent>` when missing, so an absent and an empty value differ);
/// - every `HTTP_*` variable except HTTP_HOST and HTTP_CONNECTION, which only the HTTP
///   transport adds (the test request must not carry Host or Connection itself).
///
/// Callers compare the views with each other, and with ``expectedCoreView(for:)``.
public enum CrossProtocolEnviron {
    public static let coreNames = ["REQUEST_METHOD", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH", "PATH_INFO", "SCRIPT_NAME"]
    static let transportOnly: Set<String> = ["HTTP_HOST", "HTTP_CONNECTION"]
    public static let absent = "<absent>"

    /// The core views, by protocol.
    public static func collect(
        _ request: ClientRequest,
        through protocols: [ListenerProtocol],
        logger: Logger = Logger(label: "test")
    ) async throws -> [ListenerProtocol: [String: String]] {
        try await withLiveGateway(protocols.map(loopback), application: EnvironDump(), logger: logger) { addresses in
            var views: [ListenerProtocol: [String: String]] = [:]
            for (listenerProtocol, address) in zip(protocols, addresses) {
                let response = try await send(request, through: listenerProtocol, to: address)
                guard response.status.code == 200 else {
                    throw TestFailure("\(listenerProtocol): status \(response.status.code)")
                }
                views[listenerProtocol] = coreView(of: try parseEnvironDump(response.body))
            }
            return views
        }
    }

    /// Sends one request through `listenerProtocol` to the server at `address`.
    public static func send(_ request: ClientRequest, through listenerProtocol: ListenerProtocol, to address: SocketAddress) async throws -> ClientResponse {
        if listenerProtocol == .http {
            return try await TestHTTPClient.send(request, to: address)
        }
        guard let ip = address.ipAddress, let port = address.port else { throw TestFailure("not a TCP address: \(address)") }
        let target = try ClientTarget(parsing: "\(listenerProtocol.rawValue)://\(ip):\(port)/")
        return try await ProtocolClients.send(request, to: target)
    }

    /// The core view of an environ (see the type's documentation).
    public static func coreView(of environ: [String: String]) -> [String: String] {
        var view: [String: String] = [:]
        for name in coreNames { view[name] = environ[name] ?? absent }
        for (name, value) in environ where name.hasPrefix("HTTP_") && !transportOnly.contains(name) {
            view[name] = value
        }
        return view
    }

    /// What the core view must be for `request`, by the CGI rules (RFC 3875 §4.1, and the
    /// normalizer: no HTTP_PROXY, Content-Type as CONTENT_TYPE).
    public static func expectedCoreView(for request: ClientRequest) -> [String: String] {
        var view: [String: String] = [
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query,
            "CONTENT_LENGTH": String(request.body.readableBytes),
            "PATH_INFO": request.pathInfo,
            "SCRIPT_NAME": request.scriptName,
            "CONTENT_TYPE": absent,
        ]
        for header in request.headers {
            if header.name.caseInsensitiveEquals("Content-Type") {
                view["CONTENT_TYPE"] = header.value
            } else if header.name.caseInsensitiveEquals("Proxy") || header.name.caseInsensitiveEquals("Content-Length") {
                continue
            } else {
                let name = EnvironBuilder.cgiName(forHeader: header.name)
                view[name] = view[name].map { $0 + ", " + header.value } ?? header.value
            }
        }
        return view
    }

    /// The JSON object ``EnvironDump`` prints.
    public static func parseEnvironDump(_ body: ByteBuffer) throws -> [String: String] {
        let data = Data(body.readableBytesView)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: String] else {
            throw TestFailure("EnvironDump did not print a JSON object of strings")
        }
        return object
    }
}
