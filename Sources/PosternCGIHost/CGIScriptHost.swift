import CPosternSocket
import NIOCore
import NIOPosix
import PosternCGI
import PosternCore
import Synchronization

/// The CGI script host: an Application that runs legacy CGI scripts from a root, as fcgiwrap does.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs the CGI script a request names (RFC 3875) and streams its response; served over any
/// listener (`postern serve --cgi-root DIR`).
///
/// - The script is found by walking SCRIPT_NAME + PATH_INFO under the root (``CGIScriptResolver``;
///   under a `--mount` prefix, PATH_INFO alone, ``CGIScriptHostConfiguration/mountPrefix``):
///   `..`, symlinks leaving the root, non-executable files (403) and missing ones (404) are
///   refused. A front-end's SCRIPT_FILENAME is never used to pick the script; one that names a
///   file outside the root is refused with 403 (fcgiwrap ran whatever it named), one that names
///   no file (Apache mod_proxy_fcgi's `proxy:fcgi://…`, lighttpd's document root) is ignored.
/// - The script gets a clean environment (``CGIScriptEnvironment``), its directory as working
///   directory, argv words for an ISINDEX query (§4.4), the request body on stdin (§4.2).
/// - Its stdout is parsed as a CGI response (§6) and streamed: a local `Location` without
///   `Status` is an internal redirect (§6.2.2: the request runs again as a GET for that path, at
///   most ``CGIScriptHostConfiguration/maxInternalRedirects`` times); an absolute URL without
///   `Status` becomes 302 (§6.2.3); `nph-` scripts answer with an HTTP status line (§5), passed on.
/// - stderr goes to the environ's error stream, each line prefixed with the script name.
/// - A script that prints no valid header block: 502. One that runs past the timeout: stopped
///   (SIGTERM, SIGKILL after a grace period), 504 if the head was not sent yet. No free slot
///   within ``CGIScriptHostConfiguration/queueWaitSeconds``: 503. Every child is reaped.
public struct CGIScriptHost: Application {
    public let configuration: CGIScriptHostConfiguration
    public let resolver: CGIScriptResolver
    let limiter: CGIConcurrencyLimiter
    let gatewayEnvironment: [String: String]
    let group: any EventLoopGroup
    let waitHere = WaitHereState()

    /// Hop-by-hop fields a script must not set: the gateway frames the response itself.
    static let hopByHop = ["Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "TE", "Trailer"]

    /// - Parameter gatewayEnvironment: the gateway's environment, read only for `--pass-env` names.
    public init(
        configuration: CGIScriptHostConfiguration,
        gatewayEnvironment: [String: String],
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(CGIScriptResolutionError) {
        self.configuration = configuration
        self.resolver = try CGIScriptResolver(root: configuration.root)
        self.limiter = CGIConcurrencyLimiter(slots: configuration.maxConcurrency)
        self.gatewayEnvironment = gatewayEnvironment
        self.group = group
        // Writes to a script that closed its stdin must fail with EPIPE, not kill the gateway.
        signal(SIGPIPE, SIG_IGN)
    }

    public func respond(to environ: Environ) async throws -> Response {
        if let filename = environ["SCRIPT_FILENAME"], !filename.isEmpty, resolver.namesFileOutsideRoot(filename) {
            return refuse(.forbidden, "SCRIPT_FILENAME \(String(reflecting: filename)) from the front-end is outside the CGI root", environ)
        }
        var variables = environ.variables
        let (prefix, requested) = Self.scriptPath(scriptName: environ.scriptName, pathInfo: environ.pathInfo, mount: configuration.mountPrefix)
        var path = requested
        var body = environ.body
        for _ in 0...configuration.maxInternalRedirects {
            var location: CGIScriptLocation
            do {
                location = try resolver.resolve(path: path)
            } catch {
                return refuse(ResponseStatus(code: error.status), error.description, environ)
            }
            location.scriptName = prefix + location.scriptName
            guard await limiter.acquire(waitingAtMost: configuration.queueWaitSeconds) else {
                return refuse(
                    .serviceUnavailable,
                    "\(configuration.maxConcurrency) scripts running (--cgi-max-concurrency); \(location.scriptName) waited \(configuration.queueWaitSeconds) s",
                    environ)
            }
            let run: CGIScriptRun
            do {
                run = try start(location, variables: variables, withBody: (variables["CONTENT_LENGTH"].flatMap { Int($0.string) } ?? 0) > 0)
            } catch {
                limiter.release()
                return refuse(.internalServerError, "\(error)", environ)
            }
            let errors = environ.errors
            let requestBody = body
            let outcome: CGIScriptRun.HeadOutcome
            switch waitOnThisThread(for: run, errors: errors) {
            case .finished(let finished):
                limiter.release()
                outcome = finished
            case .goesOn(let leftover):
                outcome = await runToTheEnd(run, body: requestBody, after: leftover, errors: errors)
            case nil:
                outcome = await runToTheEnd(run, body: requestBody, after: nil, errors: errors)
            }
            switch outcome {
            case .failed(let status, let reason):
                return refuse(status, "\(location.scriptName): \(reason)", environ)
            case .head(let head, let firstBytes, let complete):
                if !run.isNPH, !head.hadExplicitStatus, let target = head.headers["Location"], Self.isLocalPath(target) {
                    run.abandon()
                    let (newPath, query) = Self.split(target)
                    variables["REDIRECT_STATUS"] = "200"
                    variables["REDIRECT_URL"] = EnvironValue(prefix + path)
                    variables["REDIRECT_QUERY_STRING"] = variables["QUERY_STRING"]
                    variables["REQUEST_METHOD"] = "GET"
                    variables["QUERY_STRING"] = EnvironValue(query)
                    variables["CONTENT_LENGTH"] = nil
                    variables["CONTENT_TYPE"] = nil
                    // A target under the mount is found in the root like the request was.
                    path = !prefix.isEmpty && newPath.hasPrefix(prefix + "/") ? String(newPath.dropFirst(prefix.count)) : newPath
                    body = .empty
                    continue
                }
                var headers = head.headers
                for name in Self.hopByHop { headers.remove(name: name) }
                if environ.requestMethod == "HEAD" {
                    run.decision.fulfill(.abandon)
                    // No body, and no invented Content-Length: 0 either.
                    return Response(status: head.status, headers: headers, body: .stream { _ in })
                }
                if complete {
                    // The script's whole output is in hand: a body of bytes, which every adapter
                    // writes with its head in one write.
                    return Response(status: head.status, headers: headers, body: ResponseBody(firstBytes))
                }
                return Response(
                    status: head.status, headers: headers,
                    body: .stream { writer in
                        try await withTaskCancellationHandler {
                            do {
                                if firstBytes.readableBytes > 0 { try await writer.write(firstBytes) }
                            } catch {
                                run.abandon()
                                throw error
                            }
                            run.decision.fulfill(.stream(writer))
                            try await run.done.value().get()
                        } onCancel: {
                            run.abandon()
                        }
                    })
            }
        }
        return refuse(
            .internalServerError, "more than \(configuration.maxInternalRedirects) internal redirects from \(environ.scriptName + environ.pathInfo)", environ)
    }

    /// The waits on the request's thread: how the last ones ended.
    final class WaitHereState: Sendable {
        let policy = Mutex(WaitHerePolicy())
    }

    /// The wait for a small script on the request's own thread, when there may be one: the
    /// script has no request body to be fed, the thread serves this request alone
    /// (`postern_is_request_thread`: an accept thread), and most recent waits finished in time
    /// (``WaitHerePolicy``). `nil`: no wait.
    private func waitOnThisThread(for run: CGIScriptRun, errors: ErrorStream) -> CGIScriptRun.WaitHere? {
        guard run.process.stdinWrite == nil, configuration.waitHereMilliseconds > 0, postern_is_request_thread() != 0,
            let reactor = CGIReactor.shared, waitHere.policy.withLock({ $0.shouldWait() })
        else { return nil }
        let milliseconds = min(configuration.waitHereMilliseconds, Int(configuration.timeoutSeconds * 1000))
        guard milliseconds > 0 else { return nil }
        let waited = run.waitHere(milliseconds: milliseconds, reactor: reactor, configuration: configuration, errors: errors)
        let finished: Bool
        if case .finished = waited { finished = true } else { finished = false }
        waitHere.policy.withLock { $0.record(finishedInTime: finished) }
        return waited
    }

    /// Runs the script to its end in a task of its own (releasing its `--cgi-max-concurrency`
    /// slot then) and returns its head once it is in.
    private func runToTheEnd(_ run: CGIScriptRun, body: RequestBody, after leftover: CGIScriptRun.Leftover?, errors: ErrorStream) async
        -> CGIScriptRun.HeadOutcome
    {
        let limiter = self.limiter
        let group = self.group
        let configuration = self.configuration
        Task {
            await run.run(body: body, group: group, configuration: configuration, errors: errors, after: leftover)
            limiter.release()
        }
        return await withTaskCancellationHandler {
            await run.head.value()
        } onCancel: {
            run.abandon()
        }
    }

    /// The path to find under the root, and the prefix the script's SCRIPT_NAME keeps: with a
    /// mount and a request under it (SCRIPT_NAME is the mount), PATH_INFO alone; otherwise the
    /// whole path, SCRIPT_NAME + PATH_INFO (each front-end splits it its own way).
    static func scriptPath(scriptName: String, pathInfo: String, mount: String?) -> (prefix: String, path: String) {
        if let mount, !mount.isEmpty, scriptName == mount { return (mount, pathInfo) }
        return ("", scriptName + pathInfo)
    }

    /// Spawns the script with its clean environment, in its own directory.
    func start(_ location: CGIScriptLocation, variables: EnvironVariables, withBody: Bool) throws -> CGIScriptRun {
        let environment = CGIScriptEnvironment(
            request: variables, location: location, root: resolver.root,
            gatewayEnvironment: gatewayEnvironment, passNames: configuration.passEnvironment,
            defaultPath: configuration.defaultPath
        )
        let directory = String(location.filename[..<location.filename.lastIndex(of: "/")!])
        let process = try CGIChildProcess(
            executable: location.filename,
            arguments: ISINDEXQuery.words(variables["QUERY_STRING"]?.string ?? ""),
            environment: environment.entries,
            directory: directory.isEmpty ? "/" : directory,
            withStdin: withBody
        )
        return CGIScriptRun(process: process, scriptName: location.scriptName, isNPH: location.isNPH)
    }

    /// The error page; the reason goes to the environ's error stream (the front-end's error log
    /// over FastCGI, the gateway's log otherwise), never to the client. A 4xx is the client's
    /// doing (a missing script, a path out of the root): a note, not a server error.
    private func refuse(_ status: ResponseStatus, _ reason: String, _ environ: Environ) -> Response {
        if status.code < 500 {
            environ.errors.note("postern: cgi: \(reason)")
        } else {
            environ.errors.write("postern: cgi: \(reason)")
        }
        return .error(status)
    }

    /// A local path (RFC 3875 §6.2.2): starts with one `/` (`//host` is a network path).
    static func isLocalPath(_ location: String) -> Bool {
        location.hasPrefix("/") && !location.hasPrefix("//")
    }

    /// `/path?query` → decoded path and raw query.
    static func split(_ location: String) -> (path: String, query: String) {
        let parts = location.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = parts[0]
        let decoded = ISINDEXQuery.percentDecode(rawPath.utf8).map { String(decoding: $0, as: UTF8.self) } ?? String(rawPath)
        return (decoded, parts.count > 1 ? String(parts[1]) : "")
    }
}
