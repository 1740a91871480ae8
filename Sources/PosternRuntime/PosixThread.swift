import CPosternSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A detached POSIX thread that runs one closure: the server's own threads (the accept threads,
/// the reporter, a worker's output reader, the upgrade check), which block in system calls and
/// so must not run on an event loop or in the concurrency pool. Foundation's `Thread` would do
/// the same, but it is not in FoundationEssentials.
package enum PosixThread {
    /// Starts `body` on a new thread named `name` (at most 15 bytes, pthread_setname_np(3)).
    /// A thread that cannot be created is a fatal error, as it is for Foundation's `Thread`.
    package static func start(name: String? = nil, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let status = pthread_create(
            &thread, &attributes,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                if let name = box.name { _ = postern_set_thread_name(name) }
                box.body()
                return nil
            }, box)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            fatalError("pthread_create: \(String(cString: strerror(status)))")
        }
    }

    private final class Box {
        let name: String?
        let body: @Sendable () -> Void

        init(name: String?, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
}
