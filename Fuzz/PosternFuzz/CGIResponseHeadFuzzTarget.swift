// The CGI response head fuzz target: script output → CGIResponseHeadParser → HeaderSafety.
import NIOCore
import PosternCore

public enum CGIResponseHeadFuzzTarget {
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        var parser = CGIResponseHeadParser(mode: input.variant ? .httpStatusLine : .cgi, maxHeadBytes: 4096)
        do {
            for chunk in input.chunks {
                switch try parser.feed(chunk) {
                case .needMore:
                    continue
                case .head(let head, _):
                    // Whatever the script wrote, a parsed head is either safe to encode or refused.
                    var out = ByteBuffer()
                    _ = try? Response(status: head.status, headers: head.headers).encodeCGIHead(into: &out)
                    return
                }
            }
            try parser.finish()
        } catch {
            // Refused: the expected outcome for bad bytes.
        }
    }
}
