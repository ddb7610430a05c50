#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Follows the log file: reads what is appended, and when the path names another file
/// (rotated: renamed and replaced, so another inode) or the file shrank (truncated), reads the
/// rest of the old file, then any files rotated in between (named for their first seq), then
/// the new file from its start. Records already shown are not shown twice; a new chain (seq 1)
/// is always shown.
public struct AuditLogFollower {
    public let path: String
    /// The last seq shown or skipped, so a catch-up after a rotation neither repeats nor misses.
    public var lastSeq: UInt64?
    private var fd: Int32 = -1
    private var identity: (device: UInt64, inode: UInt64) = (0, 0)
    private var offset: Int64 = 0
    private var pending: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 1 << 16)
    private static let maxLine = 16 << 20

    public init(path: String) {
        self.path = path
        _ = reopen()
    }

    public var isOpen: Bool { fd >= 0 }

    private mutating func reopen() -> Bool {
        stop()
        let opened = path.withCString { open($0, O_RDONLY | O_CLOEXEC) }
        guard opened >= 0 else { return false }
        var info = stat()
        guard fstat(opened, &info) == 0 else {
            _ = close(opened)
            return false
        }
        fd = opened
        identity = (UInt64(info.st_dev), UInt64(info.st_ino))
        offset = 0
        pending.removeAll()
        return true
    }

    public mutating func stop() {
        if fd >= 0 { _ = close(fd) }
        fd = -1
    }

    /// Each record in the open file from where reading stopped (the first call: the whole file).
    public mutating func readAll(_ body: (AuditLogEntry) -> Void) {
        while let lines = nextLines() {
            for line in lines {
                guard let entry = AuditLogEntry(line: line) else { continue }
                if let seq = entry.seq { lastSeq = seq }
                body(entry)
            }
        }
    }

    /// Records written since the last call, oldest first.
    public mutating func poll() -> [AuditLogEntry] {
        var entries: [AuditLogEntry] = []
        readAll { entries.append($0) }
        var info = stat()
        guard path.withCString({ stat($0, &info) }) == 0 else { return entries }  // mid-rotation, or gone
        let now = (UInt64(info.st_dev), UInt64(info.st_ino))
        if fd >= 0 && now == identity {
            guard Int64(info.st_size) < offset else { return entries }
            lseek(fd, 0, SEEK_SET)  // truncated in place (copytruncate): from the start again
            offset = 0
            pending.removeAll()
            readUnseen(into: &entries)
            return entries
        }
        // Rotated (or appeared). Open the new file first: any rotation before that has renamed its
        // file already, so the listing below sees it; one after that is read twice, not missed.
        let opened = reopen()
        let floor = lastSeq ?? 0
        let rotated = AuditFiles.chainOrder(for: path).filter { $0 != path }.compactMap { file -> (UInt64, String)? in
            guard let seq = AuditFiles.rotatedSeq(inName: FileIO.baseName(of: file)), seq > floor else { return nil }
            return (seq, file)
        }
        for (_, file) in rotated {
            try? AuditLogReader.forEachEntry(in: [file]) { entry in
                if let shown = unseen(entry) { entries.append(shown) }
                return true
            }
        }
        if opened { readUnseen(into: &entries) }
        return entries
    }

    private mutating func readUnseen(into entries: inout [AuditLogEntry]) {
        while let lines = nextLines() {
            for line in lines {
                if let entry = AuditLogEntry(line: line), let new = unseen(entry) { entries.append(new) }
            }
        }
    }

    /// The entry unless its record was shown already (a new chain starting at seq 1 always is new).
    private mutating func unseen(_ entry: AuditLogEntry) -> AuditLogEntry? {
        guard let seq = entry.seq else { return entry }
        if let lastSeq, seq <= lastSeq, seq != 1 { return nil }
        lastSeq = seq
        return entry
    }

    /// The complete lines of the next read (maybe none), or nil at the end of what is written
    /// so far. A partial last line waits for its newline.
    private mutating func nextLines() -> [[UInt8]]? {
        guard fd >= 0 else { return nil }
        var got = 0
        while true {
            got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            break
        }
        if got <= 0 { return nil }
        offset += Int64(got)
        var lines: [[UInt8]] = []
        var start = 0
        for index in 0..<got where chunk[index] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                lines.append(Array(chunk[start..<index]))
            } else {
                pending.append(contentsOf: chunk[start..<index])
                lines.append(pending)
                pending.removeAll()
            }
            start = index + 1
        }
        if start < got { pending.append(contentsOf: chunk[start..<got]) }
        if pending.count > Self.maxLine { pending.removeAll() }  // not a record; skip it
        return lines
    }
}

/// The last `capacity` elements appended.
public struct AuditTailBuffer: Sendable {
    public let capacity: Int
    private var storage: [AuditLogEntry] = []
    private var start = 0

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { storage.count }

    public mutating func append(_ entry: AuditLogEntry) {
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(entry)
        } else {
            storage[start] = entry
            start = (start + 1) % capacity
        }
    }

    public var elements: [AuditLogEntry] { Array(storage[start...] + storage[..<start]) }
}
