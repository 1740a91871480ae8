import PosternCore

/// A test application that reads the whole request body before answering `received N`: a
/// request whose body breaks never gets a complete answer from it.
public struct BodyCount: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        let body = try await environ.body.collect(upTo: 1 << 30)
        return .text("received \(body.readableBytes)")
    }
}
