/// What one `postern bench` run measures and where it writes the results.
import PosternFrontEnds

public struct BenchOptions: Sendable {
    /// nil: no front-end (only `http` can run).
    public var frontEnd: FrontEnd.Kind
    public var modes: [BenchMode]
    /// Seconds of each wrk run.
    public var duration: Double
    public var connections: Int
    public var repeats: Int
    public var outDirectory: String
    /// Seconds of the unrecorded warm-up run of each mode before the first repeat.
    public var warmup: Double
    /// The CGI program the `cgi` mode spawns; nil: `hello-cgi` (or `hello`) next to `postern`.
    public var cgiBinary: String?

    public init(
        frontEnd: FrontEnd.Kind, modes: [BenchMode], duration: Double, connections: Int, repeats: Int, outDirectory: String, warmup: Double,
        cgiBinary: String? = nil
    ) {
        self.frontEnd = frontEnd
        self.modes = modes
        self.duration = duration
        self.connections = connections
        self.repeats = repeats
        self.outDirectory = outDirectory
        self.warmup = warmup
        self.cgiBinary = cgiBinary
    }
}
