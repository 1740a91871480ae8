import NIOCore

/// What a caller adds first to a client's channel, before the protocol's own handlers: a TLS
/// handler, for a server on a TLS listener (`postern request https://`, `suwsgi://`,
/// `fastcgi-tls://`). The clients themselves know nothing of TLS.
public typealias ClientChannelSetup = @Sendable (any Channel) throws -> Void
