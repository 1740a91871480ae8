import NIOSSL

/// A certificate's subject or issuer as text, the way Apache's mod_ssl writes `SSL_CLIENT_S_DN`
/// and `SSL_CLIENT_I_DN`: RFC 2253 (most specific first, `CN=client,O=Example`, with `,`, `+`,
/// `"`, `\`, `<`, `>`, `;` escaped by a backslash, and a leading `#` or space and a trailing
/// space too), and the serial number as mod_ssl's `SSL_CLIENT_M_SERIAL` (upper-case hex).
enum DistinguishedName {
    /// `entries` in the certificate's order (least specific first), as one RFC 2253 string.
    static func rfc2253(_ entries: [(type: String, value: String)]) -> String {
        entries.reversed().map { "\($0.type)=\(escaped($0.value))" }.joined(separator: ",")
    }

    /// RFC 2253 §2.4's escaping of an attribute value.
    static func escaped(_ value: String) -> String {
        var out = ""
        let characters = Array(value)
        for (index, character) in characters.enumerated() {
            let special = ",+\"\\<>;".contains(character)
            let leading = index == 0 && (character == "#" || character == " ")
            let trailing = index == characters.count - 1 && character == " "
            if special || leading || trailing { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// The serial number's bytes as upper-case hex, without leading zero bytes (as OpenSSL's
    /// `BN_bn2hex`, which mod_ssl uses): `0x00 0x1f 0x02` is `1F02`.
    static func serial(_ bytes: [UInt8]) -> String {
        let significant = bytes.drop { $0 == 0 }
        guard !significant.isEmpty else { return "00" }
        let digits = Array("0123456789ABCDEF")
        return String(significant.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
    }

    /// The short name OpenSSL prints for an attribute type.
    static func shortName(_ type: SSLCertificateNameType) -> String {
        switch type {
        case .commonName: "CN"
        case .organization: "O"
        case .organizationalUnit: "OU"
        case .country: "C"
        case .state: "ST"
        case .city: "L"
        case .emailAddress: "emailAddress"
        case .userId: "UID"
        default: "UNKNOWN"
        }
    }
}
