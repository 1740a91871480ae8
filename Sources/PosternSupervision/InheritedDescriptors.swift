import CPosternSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Descriptors a master must not hand on.
package enum InheritedDescriptors {
    /// Marks every open descriptor from 3 up close-on-exec, but `keep`: SwiftNIO's sockets (the
    /// master's `--status` listener, its event loops' epoll and event descriptors) are created
    /// without it and would otherwise pass into every worker and into an upgraded master, where
    /// a listening socket nobody accepts on holds its port and queues connections for ever.
    ///
    /// With close_range(2) (Linux 5.11) it takes one call per gap between the kept descriptors,
    /// so a descriptor another thread opens without close-on-exec just before an `execv` has
    /// microseconds in which to slip through instead of a walk of /proc/self/fd; otherwise it
    /// walks /proc/self/fd.
    package static func closeOnExec(except keep: Set<Int32>) {
        var first: UInt32 = 3
        var ranged = true
        for kept in keep.filter({ $0 >= 3 }).sorted() {
            if UInt32(kept) > first, postern_close_on_exec_range(first, UInt32(kept) - 1) != 0 {
                ranged = false
                break
            }
            first = UInt32(kept) + 1
        }
        if ranged && postern_close_on_exec_range(first, UInt32.max) == 0 { return }
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let own = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            guard let fd = Int32(name), fd >= 3, fd != own, !keep.contains(fd) else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
