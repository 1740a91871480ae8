/// Maps a request path onto a script under the CGI root, as Apache does, refusing every escape.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A script found for a request path.
public struct CGIScriptLocation: Sendable, Equatable {
    /// The URL path of the script (RFC 3875 §4.1.13 SCRIPT_NAME), e.g. `/cgi-bin/env.sh`.
    public var scriptName: String
    /// The rest of the path (§4.1.5 PATH_INFO), e.g. `/extra/path`, or empty.
    public var pathInfo: String
    /// The script's real file path (SCRIPT_FILENAME), inside the root.
    public var filename: String
    /// The script's file name: `nph-` scripts answer with a full HTTP response (§5).
    public init(scriptName: String, pathInfo: String, filename: String) {
        self.scriptName = scriptName
        self.pathInfo = pathInfo
        self.filename = filename
    }

    public var isNPH: Bool { filename.split(separator: "/").last?.hasPrefix("nph-") ?? false }
}

/// Why a path does not name a runnable script. Each maps to the status the client gets.
public enum CGIScriptResolutionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A `.` or `..` segment, a NUL byte, or a relative path (403).
    case unsafePath(String)
    /// Nothing exists there (404).
    case notFound(String)
    /// The path resolves (through a symlink) outside the root (403).
    case outsideRoot(String)
    /// A regular file without execute permission, or not a regular file (403).
    case notExecutable(String)
    /// Only directories along the path: no script to run (403).
    case directory(String)
    /// The configured root is not an existing directory (a start-up error).
    case rootMissing(String)

    public var status: Int {
        if case .notFound = self { return 404 }
        return 403
    }

    public var description: String {
        switch self {
        case .unsafePath(let path): return "refused unsafe path \(String(reflecting: path))"
        case .notFound(let path): return "no script at \(String(reflecting: path))"
        case .outsideRoot(let path): return "\(String(reflecting: path)) resolves outside the CGI root"
        case .notExecutable(let path): return "\(String(reflecting: path)) is not an executable regular file"
        case .directory(let path): return "\(String(reflecting: path)) is a directory without a script"
        case .rootMissing(let path): return "the CGI root \(String(reflecting: path)) is not an existing directory"
        }
    }
}

/// Walks a request path segment by segment under the root: the first executable regular file
/// ends SCRIPT_NAME and the rest becomes PATH_INFO (RFC 3875 §4.1.5, §4.1.13; Apache's
/// `ap_add_cgi_vars`). Every symlink on the way is resolved with realpath(3) and checked against
/// the root, so a symlink may point anywhere inside the root but never out of it.
public struct CGIScriptResolver: Sendable {
    /// The root, as realpath(3) gives it.
    public let root: String

    /// - Throws: ``CGIScriptResolutionError/rootMissing(_:)`` when the root is not a directory.
    public init(root: String) throws(CGIScriptResolutionError) {
        var info = stat()
        guard let real = Self.realPath(root), stat(real, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw .rootMissing(root) }
        self.root = real
    }

    /// Resolves the request path (SCRIPT_NAME + PATH_INFO as the front-end sent them, decoded).
    public func resolve(path: String) throws(CGIScriptResolutionError) -> CGIScriptLocation {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { throw .unsafePath(path) }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        // `current` is always a real path inside the root: an entry of it that is not a symlink
        // is real as it stands (no `.` or `..` gets this far), and only a symlink needs
        // realpath(3) and the check against the root (one lstat a segment in the common case,
        // where realpath would readlink every component of the path again).
        var current = root == "/" ? "" : root
        var consumed = ""
        for (index, segment) in segments.enumerated() {
            if segment.isEmpty && index == segments.count - 1 { break }  // trailing slash
            guard !segment.isEmpty, segment != ".", segment != ".." else { throw .unsafePath(path) }
            let candidate = current + "/" + segment
            consumed += "/" + segment
            var info = stat()
            guard lstat(candidate, &info) == 0 else { throw .notFound(consumed) }
            var real = candidate
            if info.st_mode & S_IFMT == S_IFLNK {
                guard let target = Self.realPath(candidate) else { throw .notFound(consumed) }
                guard isInsideRoot(target) else { throw .outsideRoot(consumed) }
                guard stat(target, &info) == 0 else { throw .notFound(consumed) }
                real = target
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                current = real
            case S_IFREG:
                guard access(real, X_OK) == 0 else { throw .notExecutable(consumed) }
                let rest = segments.dropFirst(index + 1).joined(separator: "/")
                let pathInfo = index + 1 < segments.count ? "/" + rest : ""
                return CGIScriptLocation(scriptName: consumed, pathInfo: pathInfo, filename: real)
            default:
                throw .notExecutable(consumed)
            }
        }
        throw .directory(consumed.isEmpty ? "/" : consumed)
    }

    /// Whether a front-end's SCRIPT_FILENAME names a file that exists outside the root: the
    /// front-end means to run a script the host must not (fcgiwrap ran whatever it named). One
    /// that names no file is not: Apache's mod_proxy_fcgi sends `proxy:fcgi://HOST:PORT/PATH`,
    /// lighttpd its own document root's path, and the host never picks the script by it anyway.
    public func namesFileOutsideRoot(_ filename: String) -> Bool {
        // Only a name that leads to nothing is let by; one realpath cannot check (a directory
        // it may not search, a symlink loop) is refused like one outside.
        guard let real = Self.realPath(filename) else { return errno != ENOENT && errno != ENOTDIR }
        return !isInsideRoot(real)
    }

    func isInsideRoot(_ real: String) -> Bool {
        real == root || real.hasPrefix(root == "/" ? "/" : root + "/")
    }

    public static func realPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
