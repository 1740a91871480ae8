/// One wrk run of one mode, as recorded in the JSON results.

public struct BenchRun: Sendable, Codable {
    public var mode: BenchMode
    /// 1-based repeat number: runs of all modes are interleaved within one repeat.
    public var repeatIndex: Int
    public var result: WrkResult
    /// The backend's peak resident set (largest VmHWM among its processes) after this run, in bytes.
    public var backendPeakRSS: Int?
    /// The 1-minute load average when the run ended.
    public var loadAverage: Double
    /// The backend's CPU time (user + system, all its processes) during the run, divided by
    /// the requests served, in microseconds.
    public var backendMicrosecondsPerRequest: Double?

    public init(mode: BenchMode, repeatIndex: Int, result: WrkResult, backendPeakRSS: Int?, loadAverage: Double, backendMicrosecondsPerRequest: Double? = nil) {
        self.mode = mode
        self.repeatIndex = repeatIndex
        self.result = result
        self.backendPeakRSS = backendPeakRSS
        self.loadAverage = loadAverage
        self.backendMicrosecondsPerRequest = backendMicrosecondsPerRequest
    }
}
