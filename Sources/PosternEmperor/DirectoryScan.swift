#if canImport(Glibc)
import Glibc
#endif

/// The emperor's directory as seen by one scan: each app file's stamp. Comparing two scans is
/// pure (``changes(from:to:)``); the scan itself is one `readdir` and a `stat` per file.
package enum DirectoryScan {
    /// What tells a file changed: its times to the nanosecond (a `touch`, uWSGI's reload habit,
    /// changes them; uWSGI compares seconds only), its size, its inode (an editor's or a deploy
    /// tool's rename over it) and its owner.
    package struct Stamp: Sendable, Hashable {
        package var modified: timespec
        package var changed: timespec
        package var size: Int
        package var inode: UInt
        package var owner: UInt32
        package var group: UInt32

        package init(modified: timespec, changed: timespec, size: Int, inode: UInt, owner: UInt32, group: UInt32) {
            self.modified = modified
            self.changed = changed
            self.size = size
            self.inode = inode
            self.owner = owner
            self.group = group
        }

        package static func == (a: Stamp, b: Stamp) -> Bool {
            a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec && a.changed.tv_sec == b.changed.tv_sec
                && a.changed.tv_nsec == b.changed.tv_nsec && a.size == b.size && a.inode == b.inode && a.owner == b.owner && a.group == b.group
        }

        package func hash(into hasher: inout Hasher) {
            hasher.combine(modified.tv_sec)
            hasher.combine(modified.tv_nsec)
            hasher.combine(inode)
        }
    }

    package struct Changes: Sendable, Equatable {
        /// New files and files whose stamp changed, by app name, sorted.
        package var found: [String] = []
        package var removed: [String] = []
    }

    /// What changed between two scans.
    package static func changes(from known: [String: Stamp], to seen: [String: Stamp]) -> Changes {
        Changes(
            found: seen.filter { known[$0.key] != $0.value }.keys.sorted(),
            removed: known.keys.filter { seen[$0] == nil }.sorted())
    }

    /// Every app file in `directory` (``AppFile/name(ofFile:)``), by app name; nil (with errno)
    /// when the directory cannot be read.
    package static func scan(_ directory: String) -> [String: Stamp]? {
        guard let handle = opendir(directory) else { return nil }
        defer { closedir(handle) }
        var stamps: [String: Stamp] = [:]
        while let entry = readdir(handle) {
            let file = withUnsafePointer(to: entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            guard let name = AppFile.name(ofFile: file) else { continue }
            var status = stat()
            // stat, not lstat: a symlink to a file elsewhere is an app (a deploy's usual link).
            guard stat(directory + "/" + file, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
            stamps[name] = Stamp(
                modified: status.st_mtim, changed: status.st_ctim, size: Int(status.st_size), inode: UInt(status.st_ino), owner: status.st_uid,
                group: status.st_gid)
        }
        return stamps
    }

    /// The bytes of a small file (an app's file is at most 1 MiB).
    package static func read(_ path: String) -> Result<[UInt8], ReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(ReadError(errno: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return .failure(ReadError(errno: errno)) }
            if count == 0 { return .success(bytes) }
            bytes += chunk[..<count]
            if bytes.count > 1 << 20 { return .failure(ReadError(errno: EFBIG)) }
        }
    }

    package struct ReadError: Error, CustomStringConvertible {
        let errno: Int32
        package var description: String { "cannot read it: \(String(cString: strerror(errno)))" }
    }
}
