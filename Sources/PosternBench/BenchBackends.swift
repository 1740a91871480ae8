/// Starts the backend of each mode: Postern listeners, the libfcgi responder, uWSGI, fcgiwrap.
import Foundation
import PosternFrontEnds

/// The started backends, by mode; modes that could not start are listed with the reason.
public struct BenchBackends: Sendable {
    public var endpoints: [BenchMode: BenchEndpoint] = [:]
    public var skipped: [(BenchMode, String)] = []

    /// Starts what `modes` need; each started process is added to `registry`.
    public static func start(
        modes: [BenchMode], workspace: BenchWorkspace, registry: ProcessRegistry, usesFcgiwrapForCGI: Bool, cgiBinary: String? = nil
    ) async throws -> BenchBackends {
        var backends = BenchBackends()
        let dir = workspace.directory
        guard let postern = workspace.binary("postern") else { throw BenchError("no postern binary in \(workspace.binDirectory)") }
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

        // POSTERN_* variables of the bench's own environment reach the backends (A/B switches).
        let passed = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("POSTERN_") }
        func spawn(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = ["PATH": "/usr/bin:/bin", "LANG": "C"]) throws
            -> ManagedProcess
        {
            let environment = environment.merging(passed) { own, _ in own }
            let process = try ManagedProcess(name: name, executable: executable, arguments: arguments, environment: environment, directory: dir)
            registry.add(process)
            return process
        }
        func wait(_ process: ManagedProcess, _ endpoint: BenchEndpoint) async throws {
            do {
                switch endpoint.address {
                case .tcp(let port): try await Wait.forPort(port, timeout: 15)
                case .unix(let path): try await Wait.forSocket(path, timeout: 15)
                }
            } catch {
                throw BenchError("\(process.name) did not start: \(error)\n\(process.output.suffix(2000))")
            }
        }

        // The shared CGI dispatcher for nginx (it has no CGI of its own): fcgiwrap on TCP.
        var fcgiwrap: BenchEndpoint?
        var fcgiwrapPID: Int32?
        let cgiModes = modes.filter { [.cgi, .cgiApp, .cgiC, .fcgiwrap].contains($0) }
        if usesFcgiwrapForCGI, !cgiModes.isEmpty {
            if let binary = BenchWorkspace.which("fcgiwrap") {
                let port = try Ports.free()
                let process = try spawn("fcgiwrap", binary, ["-c", "\(workers * 2)", "-s", "tcp:127.0.0.1:\(port)"])
                let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                try await wait(process, endpoint)
                fcgiwrap = BenchEndpoint(address: .tcp(port: port), pid: nil)
                fcgiwrapPID = process.pid
            }
        }

        for mode in modes {
            do {
                switch mode {
                case .static:
                    continue
                case .http, .https, .fastcgi, .fastcgiClose, .fastcgiUnix, .scgi, .scgiWorkers, .uwsgi, .suwsgi:
                    let flag =
                        ["http": "--http", "https": "--https", "scgi": "--scgi", "scgi-workers": "--scgi", "uwsgi": "--uwsgi", "suwsgi": "--suwsgi"][
                            mode.rawValue] ?? "--fastcgi"
                    var tlsOptions: [String] = []
                    if mode == .suwsgi || mode == .https {
                        let tls = BenchWorkspace.TLSFiles(directory: dir)
                        if let problem = tls.make() { throw BenchError(problem) }
                        tlsOptions = ["--tls-certificate", tls.certificate, "--tls-key", tls.key]
                    }
                    let endpoint: BenchEndpoint
                    if mode == .fastcgiUnix {
                        endpoint = BenchEndpoint(address: .unix(path: dir + "/run/postern-fastcgi.sock"))
                    } else {
                        endpoint = BenchEndpoint(address: .tcp(port: try Ports.free()))
                    }
                    // The hello example is built on Gateway.main, as users' own binaries are;
                    // `postern serve --app hello` serves the same app when it is absent.
                    // A bench run as root serves its own sockets as root (postern refuses that
                    // without --user or --allow-root beyond loopback).
                    let options =
                        [flag, endpoint.hostPort, "--socket-mode", "666", "--log-level", "warning"] + tlsOptions
                        + (mode == .scgiWorkers ? ["--workers", "2"] : [])
                        + (geteuid() == 0 ? ["--allow-root"] : [])
                    let process =
                        try workspace.binary("hello").map { try spawn("hello-\(mode.rawValue)", $0, options) }
                        ?? spawn("postern-\(mode.rawValue)", postern, ["serve", "--app", "hello"] + options)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = BenchEndpoint(address: endpoint.address, pid: process.pid)
                case .hummingbird, .hummingbirdTLS:
                    let binary = try workspace.buildSwiftReference("hummingbird-hello").get()
                    let port = try Ports.free()
                    var arguments = ["\(port)"]
                    if mode == .hummingbirdTLS {
                        let tls = BenchWorkspace.TLSFiles(directory: dir)
                        if let problem = tls.make() { throw BenchError(problem) }
                        arguments += [tls.certificate, tls.key]
                    }
                    let process = try spawn(mode.rawValue, binary, arguments)
                    let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = endpoint
                case .cgiHost:
                    guard let script = workspace.referenceDirectory.map({ $0 + "/hello.sh" }) else { throw BenchError("Benchmarks/reference not found") }
                    // The host finds scripts by SCRIPT_NAME + PATH_INFO under its root: /cgi-host/hello.sh.
                    _ = try workspace.install(script, as: "hello.sh", in: "cgi-host/cgi-host")
                    let port = try Ports.free()
                    let process = try spawn(
                        "postern-cgi-host", postern,
                        [
                            "serve", "--cgi-root", dir + "/cgi-host", "--fastcgi", "127.0.0.1:\(port)", "--log-level", "warning",
                        ])
                    let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = endpoint
                case .cgi, .cgiApp, .cgiC, .fcgiwrap:
                    switch mode {
                    case .cgi:
                        // hello-cgi: the same app and CGIProgram in a binary without the listeners
                        // (a smaller image starts faster); `hello` in CGI mode when it is absent.
                        guard let hello = cgiBinary ?? workspace.binary("hello-cgi") ?? workspace.binary("hello") else {
                            throw BenchError("no hello-cgi or hello binary next to postern (swift build -c release --static-swift-stdlib)")
                        }
                        _ = try workspace.install(hello, as: "hello")
                    case .cgiApp:
                        guard let hello = workspace.binary("hello") else {
                            throw BenchError("no hello binary next to postern (swift build -c release --static-swift-stdlib)")
                        }
                        _ = try workspace.install(hello, as: "hello-app")
                    case .cgiC:
                        if let problem = workspace.compile("hello-cgi.c", output: dir + "/cgi-bin/hello-c") { throw BenchError(problem) }
                    default:
                        guard let script = workspace.referenceDirectory.map({ $0 + "/hello.sh" }) else { throw BenchError("Benchmarks/reference not found") }
                        _ = try workspace.install(script, as: "hello.sh")
                    }
                    if usesFcgiwrapForCGI {
                        guard let fcgiwrap else { throw BenchError("fcgiwrap is not installed (nginx has no CGI)") }
                        // The script mode's CPU is fcgiwrap's own (its processes, as cgi-host's is
                        // Postern's); the CGI program modes' cost is in the programs it reaps.
                        backends.endpoints[mode] = mode == .fcgiwrap ? BenchEndpoint(address: fcgiwrap.address, pid: fcgiwrapPID) : fcgiwrap
                    } else {
                        guard mode != .fcgiwrap else { throw BenchError("fcgiwrap is measured through nginx only") }
                        backends.endpoints[mode] = BenchEndpoint(address: .tcp(port: 0), pid: nil)
                    }
                case .libfcgi:
                    let binary = dir + "/hello-fcgi"
                    if let problem = workspace.compile("hello-fcgi.c", output: binary, libraries: ["-lfcgi"]) { throw BenchError(problem) }
                    let port = try Ports.free()
                    let process = try spawn("libfcgi", binary, ["127.0.0.1:\(port)", "\(workers)"])
                    let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = endpoint
                case .floorSCGI, .floorUWSGI, .floorFastCGI:
                    let binary = dir + "/floor"
                    if !FileManager.default.isExecutableFile(atPath: binary),
                        let problem = workspace.compile("floor.c", output: binary, libraries: ["-lpthread"])
                    {
                        throw BenchError(problem)
                    }
                    let port = try Ports.free()
                    let wire = [BenchMode.floorSCGI: "scgi", .floorUWSGI: "uwsgi"][mode] ?? "fastcgi"
                    let process = try spawn(mode.rawValue, binary, [wire, "\(port)", "\(workers)"])
                    let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = endpoint
                case .uwsgiPythonFastCGI, .uwsgiPythonSCGI, .uwsgiPythonUWSGI, .uwsgiPythonSSL:
                    guard let uwsgi = BenchWorkspace.which("uwsgi") else {
                        throw BenchError("uwsgi is not installed (apt-get install uwsgi uwsgi-plugin-python3)")
                    }
                    guard let app = workspace.referenceDirectory.map({ $0 + "/hello_wsgi.py" }) else { throw BenchError("Benchmarks/reference not found") }
                    let socketFlag =
                        [BenchMode.uwsgiPythonFastCGI: "--fastcgi-socket", .uwsgiPythonSCGI: "--scgi-socket", .uwsgiPythonSSL: "--ssl-socket"][mode]
                        ?? "--uwsgi-socket"
                    let port = try Ports.free()
                    var socket = "127.0.0.1:\(port)"
                    if mode == .uwsgiPythonSSL {
                        let tls = BenchWorkspace.TLSFiles(directory: dir)
                        if let problem = tls.make() { throw BenchError(problem) }
                        socket += ",\(tls.certificate),\(tls.key)"
                    }
                    let process = try spawn(
                        mode.rawValue, uwsgi,
                        [
                            "--plugin", "python3", "--wsgi-file", app, "--master", "--processes", "\(workers)",
                            socketFlag, socket, "--disable-logging", "--die-on-term", "--need-app", "--listen", "128",
                        ])
                    let endpoint = BenchEndpoint(address: .tcp(port: port), pid: process.pid)
                    try await wait(process, endpoint)
                    backends.endpoints[mode] = endpoint
                }
            } catch {
                backends.skipped.append((mode, "\(error)"))
            }
        }
        return backends
    }
}
