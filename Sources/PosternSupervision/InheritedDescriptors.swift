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
    package static func closeOnExec(except keep: Set<Int32>) {
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
