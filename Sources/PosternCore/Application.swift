/// The gateway contract (Postern's PEP 3333): an application takes an ``Environ`` and returns a
/// ``Response``. It never learns which protocol carried the request.
///
/// ```swift
/// struct Hello: Application {
///     func respond(to environ: Environ) async throws -> Response {
///         .text("Hello, \(environ.pathInfo)!\n")
///     }
/// }
/// ```
///
/// Requests run concurrently, each in its own task; an application that throws gets a plain 500
/// (the error goes to the error log, never to the client). Task cancellation means the client left
/// or the request timed out.
public protocol Application: Sendable {
    func respond(to environ: Environ) async throws -> Response
}

/// An application made of a closure.
public struct ApplicationFunction: Application {
    private let body: @Sendable (Environ) async throws -> Response

    public init(_ body: @escaping @Sendable (Environ) async throws -> Response) {
        self.body = body
    }

    public func respond(to environ: Environ) async throws -> Response {
        try await body(environ)
    }
}
