import NIOCore
import PosternCore

#if canImport(Glibc)
import Glibc
#endif

/// Whether an error from writing a response means the peer went away (closed, reset, the
/// channel already closed, or the request body the response streams ended with the connection):
/// the client's doing, logged as a notice. Anything else that fails
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
        case RequestBodyError.disconnected:
            // A response streamed from the request body (an echo) whose body ended with the
            // connection: the client left, or stalled and was closed by --idle-timeout.
            return true
        default:
            return false
        }
    }
}
