/// Why a path or file an option names cannot be used: the option, the path and the reason.
public enum PathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `--umask` is not an octal mask.
    case notAnOctalMask(String)
    /// `--chdir` names no directory (checked without changing to it: `--check-config`).
    case noSuchDirectory(option: String, path: String)
    /// chdir(2) failed.
    case cannotChangeDirectory(String, errno: Int32)
    /// A file's directory does not exist (`--error-log /var/log/postern/error.log`).
    case directoryMissing(option: String, path: String, directory: String)
    /// open(2) failed on a log file.
    case cannotOpen(option: String, path: String, errno: Int32)
    /// A file could not be written whole, or put in its place.
    case cannotWrite(option: String, path: String, errno: Int32)
    /// The master's run directory (the workers' reports) could not be made.
    case cannotMakeRunDirectory(errno: Int32)

    public var description: String {
        switch self {
        case .notAnOctalMask(let text): "--umask \(text): not an octal mask such as 027"
        case .noSuchDirectory(let option, let path): "\(option) \(path): no such directory"
        case .cannotChangeDirectory(let path, let errno): "--chdir \(path): \(systemErrorText(errno))"
        case .directoryMissing(let option, let path, let directory): "\(option) \(path): the directory \(directory) does not exist"
        case .cannotOpen(let option, let path, let errno): "\(option) \(path): cannot open: \(systemErrorText(errno))"
        case .cannotWrite(let option, let path, let errno): "\(option) \(path): cannot write: \(systemErrorText(errno))"
        case .cannotMakeRunDirectory(let errno): "cannot create the run directory: \(systemErrorText(errno))"
        }
    }
}
