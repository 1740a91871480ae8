// libFuzzer entry for a TLS listener's handshake; built without -DPOSTERN_LIBFUZZER it replays the files it is given.
import Foundation
import PosternFuzz

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    TLSFuzzTarget.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}

@main
enum FuzzMain {
    static func main() {
        #if POSTERN_LIBFUZZER
        // Our own main hands over to libFuzzer (SwiftPM renames an executable's main, so
        // libFuzzer's own main cannot be used).
        exit(libFuzzerMain(fuzzTestOneInput))
        #else
        FuzzReplay.main(TLSFuzzTarget.run)
        #endif
    }
}
