/// A middleware wraps an application and is one (PEP 3333 §"Middleware: Components that Play
/// Both Sides"): it sees the environ on the way in and the response on the way out.
public protocol Middleware: Application {
    /// The application it wraps.
    var next: any Application { get }
}

extension Application {
    /// Wraps `self` in a middleware: `app.wrapped(in: Validator.init)`.
    public func wrapped(in middleware: (any Application) -> any Application) -> any Application {
        middleware(self)
    }

    /// Wraps `self` in each middleware in turn; the first is innermost, the last sees requests first.
    public func wrapped(in middlewares: [(any Application) -> any Application]) -> any Application {
        middlewares.reduce(self as any Application) { app, middleware in middleware(app) }
    }
}

/// A middleware made of a closure that receives the environ and the next application.
public struct MiddlewareFunction: Middleware {
    public let next: any Application
    private let body: @Sendable (Environ, any Application) async throws -> Response

    public init(
        wrapping next: any Application,
        _ body: @escaping @Sendable (Environ, any Application) async throws -> Response
    ) {
        self.next = next
        self.body = body
    }

    public func respond(to environ: Environ) async throws -> Response {
        try await body(environ, next)
    }
}
