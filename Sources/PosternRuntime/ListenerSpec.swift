import NIOCore
import PosternCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One listener to open: which protocol, where, and who may connect.
public struct ListenerSpec: Sendable, Hashable, CustomStringConvertible {
    public var listenerProtocol: ListenerProtocol
    public var address: ListenAddress
    /// Mode of a unix socket file this listener creates. Default 0660 (owner and group).
    public var socketMode: UInt16
    public var allow: AllowList
    /// The option that asked for this listener when it is not the protocol's own (`--status`).
    public var option: String

    public init(
        _ listenerProtocol: ListenerProtocol, _ address: ListenAddress, socketMode: UInt16 = 0o660, allow: AllowList = AllowList(),
        option: String? = nil
    ) {
        self.listenerProtocol = listenerProtocol
        self.address = address
        self.socketMode = socketMode
        self.allow = allow
        self.option = option ?? "--\(listenerProtocol.rawValue)"
    }

    public var description: String { "\(listenerProtocol) on \(address)" }

    /// `error`, met while opening this listener, as the one line a user reads: the option, the
    /// address and the cause (`--http 127.0.0.1:8080: cannot bind: Address already in use`).
    func failure(_ error: any Error) -> ListenerError {
        if let error = error as? ListenerError { return error }
        let cause: String
        if let error = error as? IOError {
            // SwiftNIO names the failed call first: "bind(descriptor:…): …", "listen(…): …".
            let call = "\(error)".hasPrefix("listen") ? "cannot listen" : "cannot bind"
            cause = "\(call): \(String(cString: strerror(error.errnoCode)))"
        } else {
            cause = "\(error)"
        }
        return ListenerError(option: option, address: "\(address)", cause: cause)
    }

    /// Whether the listener is a TCP address given by host and port.
    var isTCP: Bool {
        if case .tcp = address { return true }
        return false
    }
}

/// A listener that could not be opened: which option, which address, why.
public struct ListenerError: Error, CustomStringConvertible, Sendable {
    public let option: String
    public let address: String
    public let cause: String

    public var description: String { "\(option) \(address): \(cause)" }
}
