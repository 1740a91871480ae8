import Foundation
import PosternTestSupport
import Testing

/// The checks every shipped configuration must pass through its real front-end.
enum FrontEndChecks {
    /// The request of the environ check: a path with an encoded space, an encoded query, a custom
    /// header and a `Proxy:` header (httpoxy).
    static let environSuffix = "/some/where%20x?q=a%20b&r=1"

    /// GET `prefix + environSuffix` → the environ as the app saw it; checks what every front-end
    /// must agree on, and returns the whole environ for the split-specific checks.
    @discardableResult
    static func environ(_ frontEnd: FrontEnd, prefix: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: String] {
        let response = try await BlockingClient.get(
            port: frontEnd.port, prefix + environSuffix, headers: ["X-Custom: hello there", "Proxy: http://evil.example:3128"])
        try #require(
            response.status == 200, "status \(response.status): \(String(decoding: response.body, as: UTF8.self))\n\(frontEnd.logs)",
            sourceLocation: sourceLocation)
        let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String]
        let environ = try #require(object, sourceLocation: sourceLocation)
        #expect(environ["REQUEST_METHOD"] == "GET", sourceLocation: sourceLocation)
        #expect(environ["QUERY_STRING"] == "q=a%20b&r=1", sourceLocation: sourceLocation)
        #expect(environ["HTTP_X_CUSTOM"] == "hello there", sourceLocation: sourceLocation)
        #expect(environ["HTTP_PROXY"] == nil, "httpoxy: HTTP_PROXY reached the app", sourceLocation: sourceLocation)
        // Whatever the split, SCRIPT_NAME + PATH_INFO is the decoded path.
        let path = (environ["SCRIPT_NAME"] ?? "") + (environ["PATH_INFO"] ?? "")
        #expect(path.hasSuffix("/some/where x"), "SCRIPT_NAME + PATH_INFO = \(path)", sourceLocation: sourceLocation)
        #expect(environ["SCRIPT_NAME"] != "/", sourceLocation: sourceLocation)
        return environ
    }

    /// POST 256 KiB of random bytes to `target` (an echo) → the same bytes and Content-Type back.
    static func echo(_ frontEnd: FrontEnd, target: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<(256 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let response = try await BlockingClient.post(port: frontEnd.port, target, body: payload, contentType: "application/x-postern-test")
        #expect(response.status == 200, "\(frontEnd.logs)", sourceLocation: sourceLocation)
        #expect(response.header("Content-Type") == "application/x-postern-test", sourceLocation: sourceLocation)
        #expect(response.body.count == payload.count, sourceLocation: sourceLocation)
        let identical = response.body == payload
        #expect(identical, "the echoed body differs from the one sent", sourceLocation: sourceLocation)
    }

    /// 32 concurrent clients × 10 requests, all 200.
    static func concurrency(_ frontEnd: FrontEnd, target: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let statuses = try await BlockingClient.concurrentGets(port: frontEnd.port, target, clients: 32, requests: 10)
        #expect(statuses.count == 320, sourceLocation: sourceLocation)
        let failures = statuses.filter { $0 != 200 }
        #expect(failures.isEmpty, "\(failures.count) of 320 failed: \(Set(failures))\n\(frontEnd.logs)", sourceLocation: sourceLocation)
    }
}
