/// Why a TLS listener cannot serve: each case names the option, the file and what is wrong
/// with it, as the one line a user reads (and the process exits with status 64).
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A TLS listener (`--https`, `--suwsgi`, `--fastcgi-tls`) without `--tls-certificate` and
    /// `--tls-key`.
    case noCertificateGiven(listener: String)
    /// open(2) or read(2) failed.
    case cannotRead(option: String, path: String, errno: Int32)
    case empty(option: String, path: String)
    /// Over 1 MiB: no certificate file is.
    case tooLarge(option: String, path: String)
    /// The file is not PEM certificates.
    case notACertificate(option: String, path: String)
    /// PEM, but without one certificate in it.
    case noCertificate(option: String, path: String)
    /// Not an unencrypted PEM private key.
    case notAPrivateKey(path: String)
    /// The key is not the certificate's.
    case keyDoesNotMatch(key: String, certificate: String, reason: String)
    /// `--tls-min-version` is neither 1.2 nor 1.3.
    case unknownMinimumVersion(String)

    public var description: String {
        switch self {
        case .noCertificateGiven(let listener):
            "\(listener) needs --tls-certificate FILE and --tls-key FILE"
        case .cannotRead(let option, let path, let errno):
            "\(option) \(path): cannot read it: \(systemErrorText(errno))"
        case .empty(let option, let path):
            "\(option) \(path): the file is empty"
        case .tooLarge(let option, let path):
            "\(option) \(path): the file is over 1 MiB; not a certificate or key"
        case .notACertificate(let option, let path):
            "\(option) \(path): not a PEM certificate file (-----BEGIN CERTIFICATE-----)"
        case .noCertificate(let option, let path):
            "\(option) \(path): no certificate in it"
        case .notAPrivateKey(let path):
            "--tls-key \(path): not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)"
        case .keyDoesNotMatch(let key, let certificate, let reason):
            "--tls-key \(key) is not the key of --tls-certificate \(certificate) (\(reason))"
        case .unknownMinimumVersion(let text):
            "--tls-min-version \(text): give 1.2 or 1.3"
        }
    }
}
