import PosternCore

/// The process's standard error, written with write(2): for the few lines printed before a
/// logger exists or after it is gone (a start-up error, a master's reason for stopping).
package enum StandardError {
    /// Writes `text` whole (``FileDescriptorIO/writeAll(_:_:)``: short writes and EINTR retried).
    package static func write(_ text: String) {
        var text = text
        _ = text.withUTF8 { FileDescriptorIO.writeAll(2, UnsafeRawBufferPointer($0)) }
    }
}
