#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin POSIX wrappers: the writer needs exact control over append, fsync and rename.
enum FileIO {
    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// An errno value.
    struct Failure: Error {
        var code: Int32
    }

    static func openForAppend(_ path: String) -> Result<Int32, Failure> {
        let fd = path.withCString { open($0, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
        return fd >= 0 ? .success(fd) : .failure(Failure(code: errno))
    }

    static func openForReading(_ path: String) -> Result<Int32, Failure> {
        let fd = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        return fd >= 0 ? .success(fd) : .failure(Failure(code: errno))
    }

    /// Writes everything (retrying short writes and EINTR); the errno on failure.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if written == 0 { return EIO }
            offset += written
        }
        return nil
    }

    static func close(_ fd: Int32) {
        #if canImport(Glibc)
        _ = Glibc.close(fd)
        #elseif canImport(Musl)
        _ = Musl.close(fd)
        #else
        _ = Darwin.close(fd)
        #endif
    }

    static func sync(_ fd: Int32) -> Int32? {
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            return errno
        }
        return nil
    }

    struct Status {
        var size: Int64
        var device: UInt64
        var inode: UInt64
        var links: UInt64
        var isRegular: Bool
    }

    static func status(of fd: Int32) -> Status? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return Status(info)
    }

    static func status(atPath path: String) -> Status? {
        var info = stat()
        guard path.withCString({ stat($0, &info) }) == 0 else { return nil }
        return Status(info)
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return path.withCString { lstat($0, &info) } == 0
    }

    static func rename(_ from: String, _ to: String) -> Int32? {
        #if canImport(Glibc)
        let result = from.withCString { source in to.withCString { target in Glibc.rename(source, target) } }
        #elseif canImport(Musl)
        let result = from.withCString { source in to.withCString { target in Musl.rename(source, target) } }
        #else
        let result = from.withCString { source in to.withCString { target in Darwin.rename(source, target) } }
        #endif
        return result == 0 ? nil : errno
    }

    /// fsync on the directory, so a created or renamed file survives a crash.
    static func syncDirectory(of path: String) {
        let fd = directory(of: path).withCString { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = String(path[..<slash])
        return directory.isEmpty ? "/" : directory
    }

    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// `mkdir -p` with mode 0750.
    static func makeDirectories(_ path: String) -> Int32? {
        if path.isEmpty || exists(path) { return nil }
        let parent = directory(of: path)
        if parent != path, let failure = makeDirectories(parent) { return failure }
        if path.withCString({ mkdir($0, 0o750) }) != 0 && errno != EEXIST { return errno }
        return nil
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let handle = opendir(path) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Reads up to `count` bytes at `offset`.
    static func read(_ fd: Int32, offset: Int64, count: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
            while filled < count {
                let got = pread(fd, raw.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
                if got < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                if got == 0 { break }
                filled += got
            }
            return true
        }
        guard ok else { return nil }
        buffer.removeSubrange(filled...)
        return buffer
    }

    /// Names the calling thread for `top -H`, `ps -L` and `perf` (Linux: at most 15 bytes).
    /// Foundation's `Thread.name` does not reach the kernel on Linux, and `pthread_setname_np`
    /// is not visible to Swift there; `/proc/thread-self/comm` is the same setting.
    static func nameCurrentThread(_ name: String) {
        #if os(Linux)
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #endif
    }
}

extension FileIO.Status {
    init(_ info: stat) {
        size = Int64(info.st_size)
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        links = UInt64(info.st_nlink)
        isRegular = (info.st_mode & S_IFMT) == S_IFREG
    }
}
