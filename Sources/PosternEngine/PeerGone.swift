import NIOCore
import PosternCore

#if canImport(Glibc)
import Glibc
#endif

/// Whether an error from writing a response means the peer went away (closed, reset, or the
/// channel is already closed): the client's doing, logged as a notice. Anything else that fails
/// a response mid-body (the application's body stream throwing) is an error.
public enum PeerGone {
    public static func describes(_ error: any Error) -> Bool {
        switch error {
        case let error as ChannelError:
            return error == .ioOnClosedChannel || error == .alreadyClosed || error == .outputClosed || error == .eof
        case let error as IOError:
            return [ECONNRESET, EPIPE, ECONNABORTED, ENOTCONN].contains(error.errnoCode)
        case is NIOAsyncWriterError:
            return true  // the channel's outbound writer was finished: the connection is gone
        default:
            return false
        }
    }
}
