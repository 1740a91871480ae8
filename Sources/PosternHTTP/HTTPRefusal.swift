import NIOCore
import PosternCore
import PosternEngine

/// The access-log record of an HTTP request answered before the contract: what is known of it
/// (the peer, and the request line when it could be parsed; `-` otherwise, as Apache logs a
/// request it could not read).
enum HTTPRefusal {
    static func record(status: Int, context: ConnectionContext, method: String = "-", target: String = "-", serverProtocol: String = "-") -> RequestRecord {
        RequestRecord(
            gatewayProtocol: .http, remoteAddress: context.remoteAddress?.ipAddress ?? "-",
            method: method, target: target, serverProtocol: serverProtocol,
            status: status, startedAt: RequestRecord.wallClockNow())
    }
}
