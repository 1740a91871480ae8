import PosternCGI

/// The process environment, read straight from `environ` (no Foundation: CGI start-up time is
/// the whole cost of CGI, and Foundation's is measurable). The reading itself lives with the
/// CGI program (``CGIProgram/processEnvironment()``), which CGI-only binaries use without the
/// runtime.
public enum ProcessEnvironment {
    public static var current: [String: String] { CGIProgram.processEnvironment() }
}
