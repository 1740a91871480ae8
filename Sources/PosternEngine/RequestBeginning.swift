import Logging
import PosternCore

/// Why a request is answered without calling the application, and with what status.
public struct RequestRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: ResponseStatus
    public let reason: String

    public init(_ status: ResponseStatus, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    public var description: String { "\(status.code): \(reason)" }
}

/// The beginning every request shares, whichever path serves it (the fast path, an SCGI or
/// uwsgi pipeline, a FastCGI connection, the HTTP listener): the normalizer's verdict on its
/// variables, then the body's framing checked against `CONTENT_LENGTH` and `--max-body-bytes`.
/// A request that passes becomes an ``Environ``; one that does not is answered with its
/// ``RequestRefusal`` through ``GatewayConfiguration/response(refusing:logger:)``, the same way
/// on every path.
public enum RequestBeginning {
    /// The normalized variables, or why the request is refused:
    /// - a rule of the normalizer broken (400; RFC 3875 §4.1 and the rules in ``EnvironBuilder``);
    /// - a body the protocol framed at another length than `CONTENT_LENGTH` says (400): SCGI
    ///   and uwsgi frame the body by that same variable, so a disagreement would let a body
    ///   smuggle bytes past the application, and neither length is trusted;
    /// - a declared body longer than `maxBodyBytes` (413), where the path checks it here.
    ///
    /// - Parameters:
    ///   - framedBodyLength: the body's length as the protocol framed it; `nil` where the
    ///     framing does not fix it ahead (HTTP chunked, FastCGI's STDIN stream).
    ///   - maxBodyBytes: `--max-body-bytes`, for a path that refuses a declared length up front;
    ///     `nil` where the decoder enforces it itself.
    @inlinable
    public static func check(
        _ variables: Result<EnvironBuilder.Result, NormalizationError>,
        framedBodyLength: Int? = nil,
        maxBodyBytes: Int? = nil
    ) -> Result<EnvironBuilder.Result, RequestRefusal> {
        switch variables {
        case .failure(let error):
            return .failure(RequestRefusal(.badRequest, error.description))
        case .success(let normalized):
            if let refusal = refusal(of: normalized, framedBodyLength: framedBodyLength, maxBodyBytes: maxBodyBytes) { return .failure(refusal) }
            return .success(normalized)
        }
    }

    /// The body's checks of ``check(_:framedBodyLength:maxBodyBytes:)`` on variables the
    /// normalizer has passed; `nil` when the request may go on. For a path that holds no
    /// `Result` of the normalizer's (a CGI program: instantiating
    /// `Result<_, NormalizationError>` makes the runtime look up `NormalizationError: Error`, a
    /// scan of every conformance in the binary, at every start).
    @inlinable
    public static func refusal(of normalized: EnvironBuilder.Result, framedBodyLength: Int? = nil, maxBodyBytes: Int? = nil) -> RequestRefusal? {
        if let framedBodyLength, normalized.contentLength ?? 0 != framedBodyLength {
            return RequestRefusal(.badRequest, "CONTENT_LENGTH disagrees with the body's framing")
        }
        if let maxBodyBytes, let length = normalized.contentLength, length > maxBodyBytes {
            return RequestRefusal(.payloadTooLarge, "Content-Length \(length) exceeds --max-body-bytes \(maxBodyBytes)")
        }
        return nil
    }
}

extension GatewayConfiguration {
    /// The answer to a refused request: logged at `notice` with its status and reason (a
    /// client's mistake, not the server's), and a plain error page (the reason shown only
    /// with `--debug`).
    public func response(refusing refusal: RequestRefusal, logger: Logger) -> Response {
        logger.notice("request refused", metadata: ["status": "\(refusal.status.code)", "reason": "\(refusal.reason)"])
        return errorResponse(refusal.status, detail: refusal.reason)
    }
}
