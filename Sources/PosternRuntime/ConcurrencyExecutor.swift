/// Runs Swift concurrency's global executor on SwiftNIO's event loop threads (one pool, fewer thread hops).
import CPosternExecutorHook
import NIOCore
import NIOPosix

public enum ConcurrencyExecutor {
    /// Installs `MultiThreadedEventLoopGroup.singleton` as the global executor unless
    /// `POSTERN_GLOBAL_EXECUTOR=default`: a request's task then runs on the threads that do its
    /// I/O instead of hopping to the cooperative pool and back, which on a busy 2-core machine
    /// costs a wait in the run queue at every hop. ``Gateway/main(_:cgiApplication:)`` and
    /// ``Gateway/run(_:options:)`` call it, so every binary built on them gets it; calling it
    /// again does nothing.
    ///
    /// SwiftNIO's installer finds the runtime's hook with `dlsym`, which fails in a
    /// `--static-swift-stdlib` build (the runtime's symbols are not exported there); the same
    /// hook is then set through the linker (``postern_install_enqueue_global_hook``).
    ///
    /// - Returns: whether the event loops are the global executor.
    @discardableResult
    public static func install() -> Bool {
        installed
    }

    private static let installed: Bool = {
        if let choice = getenv("POSTERN_GLOBAL_EXECUTOR"), String(cString: choice) == "default" { return false }
        if NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() { return true }
        return installThroughTheLinker()
    }()

    /// What NIO's installer does, with the hook's address from the linker: the hook takes the
    /// job and the runtime's own enqueue, and hands the job to an event loop of the singleton
    /// group (the current one when called on one: `any()` prefers it).
    private static func installThroughTheLinker() -> Bool {
        // The hook's signature as the runtime declares it, for the compilers NIO supports it for.
        #if compiler(<6.6)
        typealias Original = @convention(thin) (UnownedJob) -> Void
        typealias Hook = @convention(thin) (UnownedJob, Original) -> Void
        let hook: Hook = { job, _ in
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
        }
        return withUnsafeTemporaryAllocation(of: Hook.self, capacity: 1) { slot in
            slot.initialize(repeating: hook)
            return slot.withMemoryRebound(to: UnsafeMutableRawPointer.self) { postern_install_enqueue_global_hook($0[0]) }
        }
        #else
        return false
        #endif
    }
}
