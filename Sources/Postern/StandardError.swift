import Glibc

/// The process's standard error, written with write(2): for the few lines printed before a
/// logger exists or after it is gone (a start-up error, a master's reason for stopping).
enum StandardError {
    /// Writes `text` whole, retrying short writes and EINTR.
    static func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
    }
}
