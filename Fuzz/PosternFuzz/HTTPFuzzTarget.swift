// The HTTP fuzz target: NIOHTTP1's request decoder on an EmbeddedChannel → HTTPTarget → normalizer.
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PosternCore
import PosternHTTP

public enum HTTPFuzzTarget {
    public static func run(_ data: UnsafeBufferPointer<UInt8>) {
        let input = FuzzInput(data)
        // The target parser alone, on the raw bytes as a string: it sees what no decoder filters.
        _ = HTTPTarget(parsing: String(decoding: input.bytes, as: UTF8.self))
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            for chunk in input.chunks {
                try channel.writeInbound(chunk)
                while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                    if case .head(let head) = part { normalize(head) }
                }
            }
        } catch {
            // A decoding error: the server answers 400 and closes.
        }
    }

    /// The head through HTTPTarget and the normalizer, as HTTPRequestVariables.variables(for:connection:) does.
    static func normalize(_ head: HTTPRequestHead) {
        _ = try? HTTPRequestVariables.builder(for: head, maxBytes: 4096)?.finish()
    }
}
