import Foundation
import NIOCore
import PosternApps
import PosternCore
import Testing

@Suite("Demo apps, with no network")
struct DemoAppTests {
    func environ(_ variables: EnvironVariables, body: RequestBody = .empty) -> Environ {
        Environ(variables: variables, body: body, gatewayProtocol: .cgi, multithread: false, multiprocess: true, runOnce: true)
    }

    func bodyText(_ response: Response) async throws -> [UInt8] {
        let writer = CollectingWriter()
        try await response.body.write(to: writer)
        return writer.bytes.withLock { $0 }
    }

    @Test("hello says Hello, World!")
    func hello() async throws {
        let response = try await Hello().respond(to: environ(["REQUEST_METHOD": "GET"]))
        #expect(response.status.code == 200)
        #expect(response.headers["Content-Type"] == "text/plain; charset=utf-8")
        #expect(try await bodyText(response) == Array("Hello, World!\n".utf8))
    }

    @Test("environ is valid JSON whatever bytes the variables hold, with the gateway entries")
    func environJSON() async throws {
        let response = try await EnvironDump().respond(
            to: environ([
                "REQUEST_METHOD": "GET",
                "PATH_INFO": EnvironValue(bytes: [0x2F, 0xFF, 0x00, 0x22, 0x5C, 0x0A]),
                "QUERY_STRING": "a=\"b\"",
            ]))
        #expect(response.headers["Content-Type"] == "application/json")
        let json = try JSONSerialization.jsonObject(with: Data(try await bodyText(response))) as? [String: String]
        let object = try #require(json)
        #expect(object["PATH_INFO"] == "/\u{FFFD}\u{0}\"\\\n")
        #expect(object["QUERY_STRING"] == "a=\"b\"")
        #expect(object["gateway.run_once"] == "true")
        #expect(object["gateway.multithread"] == "false")
        #expect(object["gateway.url_scheme"] == "http")
    }

    @Test("echo streams the body back with the request's Content-Type")
    func echo() async throws {
        let response = try await Echo().respond(
            to: environ(
                ["REQUEST_METHOD": "POST", "CONTENT_TYPE": "x/y", "CONTENT_LENGTH": "5"],
                body: RequestBody(bytes: ByteBuffer(string: "hello"))
            ))
        #expect(response.headers["Content-Type"] == "x/y")
        #expect(try await bodyText(response) == Array("hello".utf8))
        let untyped = try await Echo().respond(to: environ(["REQUEST_METHOD": "POST"]))
        #expect(untyped.headers["Content-Type"] == "application/octet-stream")
    }
}
