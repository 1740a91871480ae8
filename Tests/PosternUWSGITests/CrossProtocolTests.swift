import NIOCore
import Postern
import PosternApps
import PosternClient
import PosternCore
import PosternTestSupport
import Testing

/// HTTP, FastCGI, SCGI and uwsgi served at once by one GatewayServer, and the same request
/// giving the same environ through each (issue 4's proof that every adapter uses the one
/// normalizer).
@Suite struct CrossProtocolTests {
    static let protocols: [ListenerProtocol] = [.http, .fastcgi, .scgi, .uwsgi]

    static let requests: [ClientRequest] = [
        ClientRequest(method: "GET", target: "/", headers: [("Accept", "*/*")]),
        ClientRequest(
            method: "POST",
            target: "/caf%C3%A9/a%20b/?x=1&y=%2F&z=",
            headers: [
                ("Content-Type", "application/x-www-form-urlencoded"), ("X-Request-Id", "r-42"), ("Accept-Language", "fr"),
                ("Cookie", "a=1"), ("Proxy", "http://evil.example"),
            ],
            body: ByteBuffer(string: "field=value&other=2")),
        ClientRequest(method: "DELETE", target: "/items/7?force", headers: [("Authorization", "Bearer t")]),
    ]

    @Test(arguments: 0..<requests.count)
    func sameRequestSameEnvironThroughEveryProtocol(_ index: Int) async throws {
        let request = Self.requests[index]
        let views = try await CrossProtocolEnviron.collect(request, through: Self.protocols)
        let expected = CrossProtocolEnviron.expectedCoreView(for: request)
        #expect(views.count == Self.protocols.count)
        for listenerProtocol in Self.protocols {
            #expect(views[listenerProtocol] == expected, "\(listenerProtocol) differs from the CGI rules")
        }
        #expect(views[.http] == views[.scgi])
        #expect(views[.http] == views[.uwsgi])
        #expect(views[.http] == views[.fastcgi])
    }

    /// One process, four listeners, a 16 MiB echo through each: the bodies come back identical.
    @Test func echoOf16MiBThroughEachProtocolOfOneServer() async throws {
        let payload = EchoPayload.make(bytes: 16 << 20)
        try await withLiveGateway(Self.protocols.map(loopback), application: Echo()) { addresses in
            for (listenerProtocol, address) in zip(Self.protocols, addresses) {
                let clock = ContinuousClock()
                let start = clock.now
                let request = ClientRequest(method: "POST", target: "/echo", headers: [("Content-Type", "application/octet-stream")], body: payload)
                let response = try await CrossProtocolEnviron.send(request, through: listenerProtocol, to: address)
                print("\(listenerProtocol) 16 MiB echo on the shared server: \(clock.now - start)")
                #expect(response.status.code == 200, "\(listenerProtocol)")
                let identical = response.body == payload  // compared outside #expect: a failure must not print megabytes
                #expect(identical, "\(listenerProtocol): the echo differs")
            }
        }
    }
}
