import PosternCore

/// The argv words of an ISINDEX-style query (RFC 3875 §4.4): what a front-end passes as arguments.
///
/// RFC 3875 §4.4: when QUERY_STRING contains no unencoded `=`, the server may split it on `+`,
/// percent-decode each word and pass the words as the script's command-line arguments
/// (Apache does). A query with `=` yields no words.
public enum ISINDEXQuery {
    /// The decoded words, or `[]` when the query is empty, has an `=`, or a word does not decode.
    public static func words(_ query: String) -> [String] {
        guard !query.isEmpty, !query.utf8.contains(UInt8(ascii: "=")) else { return [] }
        var words: [String] = []
        for part in query.utf8.split(separator: UInt8(ascii: "+"), omittingEmptySubsequences: true) {
            guard let bytes = percentDecode(part), !bytes.contains(0) else { return [] }
            words.append(String(decoding: bytes, as: UTF8.self))
        }
        return words
    }

    /// `%41` → `A`; `nil` on a truncated or non-hex escape.
    package static func percentDecode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                guard first < bytes.endIndex else { return nil }
                let second = bytes.index(after: first)
                guard second < bytes.endIndex, let high = hexDigitValue(bytes[first]), let low = hexDigitValue(bytes[second]) else { return nil }
                out.append(high << 4 | low)
                index = bytes.index(after: second)
            } else {
                out.append(byte)
                index = bytes.index(after: index)
            }
        }
        return out
    }
}
