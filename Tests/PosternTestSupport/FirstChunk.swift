import PosternCore

/// A test application that answers as soon as the first body chunk arrives, with that chunk's
/// text: it proves the body streams into the application before the request is complete.
public struct FirstChunk: Application {
    public init() {}

    public func respond(to environ: Environ) async throws -> Response {
        var iterator = environ.body.makeAsyncIterator()
        let first = try await iterator.next()
        return .text("first: \(first.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? "")")
    }
}
