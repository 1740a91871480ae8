/// Runs Swift concurrency's global executor on SwiftNIO's event loop threads (one pool, fewer thread hops).
import NIOCore
import NIOPosix
import Foundation

enum ConcurrencyExecutor {
    /// Installs `MultiThreadedEventLoopGroup.singleton` as the global executor unless
    /// `POSTERN_GLOBAL_EXECUTOR=default`: a request's task then runs on the threads that do its
    /// I/O instead of hopping to the cooperative pool and back, which on a busy 2-core machine
    /// costs a wait in the run queue at every hop. Call first thing in `main`.
    static func install() {
        if let choice = getenv("POSTERN_GLOBAL_EXECUTOR"), String(cString: choice) == "default" { return }
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
    }
}
