extension Duration {
    /// The duration in seconds, as the logs, the status pages and the policies' thresholds
    /// count time (a `Double`: attosecond precision is not needed there).
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension Duration {
    /// The seconds as a log line says them: `5` for a whole number, `0.25` otherwise.
    package var secondsText: String {
        let (seconds, attoseconds) = components
        return attoseconds == 0 ? "\(seconds)" : "\(inSeconds)"
    }
}
