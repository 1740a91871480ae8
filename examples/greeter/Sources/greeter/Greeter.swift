import Postern

/// The whole app: one value with one async method from the request's `Environ` to a `Response`.
/// It never learns which protocol carried the request.
struct Greeter: Application {
    func respond(to environ: Environ) async throws -> Response {
        let name = environ.queryString.isEmpty ? "world" : environ.queryString
        environ.errors.write("greeting \(name)")  // FCGI_STDERR over FastCGI, stderr in CGI mode
        return .text("Hello, \(name), via \(environ.gatewayProtocol)!\n")
    }
}

/// `Gateway.main` is the whole `main`: every `postern serve` flag (`--fastcgi`, `--scgi`,
/// `--uwsgi`, `--http`, limits, workers, logs), FastCGI on fd 0 under a process manager, and one
/// request as a CGI program when a front-end runs the binary as one.
@main
enum Main {
    static func main() async {
        await Gateway.main(Greeter(), version: "1.0.0")
    }
}
