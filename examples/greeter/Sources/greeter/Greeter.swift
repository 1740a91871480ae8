import Postern

struct Greeter: Application {
    func respond(to environ: Environ) async throws -> Response {
        let name = environ.queryString.isEmpty ? "world" : environ.queryString
        environ.errors.write("greeting \(name)")  // FCGI_STDERR over FastCGI, stderr in CGI mode
        return .text("Hello, \(name), via \(environ.gatewayProtocol)!\n")
    }
}

@main
enum Main {
    static func main() {
        Gateway.main(Greeter(), version: "1.0.0")
    }
}
