import PosternApps
import PosternCGI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The `hello` demo app as a CGI program and nothing else: the same application and the same
/// `CGIProgram` as `hello` in CGI mode, in a binary without the listeners, the argument parser,
/// metrics or Foundation. A CGI program's cost is its start-up, and the runtime's start-up grows
/// with the size of the image it has to load and scan (see Benchmarks/README.md).
///
/// A synchronous `main`: the request's task runs on the main thread (`runOnThisThread`), and
/// the main thread never parks in `dispatch_main` as an async `main`'s does, which is what makes
/// a `-static-executable` build start in about a millisecond (Benchmarks/README.md's build
/// command).
@main
enum HelloCGI {
    static func main() {
        exit(CGIProgram.runOnThisThread(Hello()))
    }
}
