import Synchronization

/// The session each client certificate signed in, shared by this instance's connections: a
/// new connection with the same certificate and no cookie (a script with `curl --cert`, a
/// browser's parallel connections) goes on in that session while it lives, instead of a new
/// sign-in, a new store row and a new `login` event per connection.
final class CertificateSessions: Sendable {
    /// Beyond this many certificates the table starts over (each entry is ~150 bytes).
    static let capacity = 10_000

    private let sessions = Mutex<[String: [UInt8]]>([:])

    /// The cookie value of the session `sha256` signed in, if any (the caller checks it lives).
    func cookie(for sha256: String) -> [UInt8]? {
        sessions.withLock { $0[sha256] }
    }

    func remember(_ cookie: [UInt8], for sha256: String) {
        sessions.withLock { table in
            if table.count >= Self.capacity, table[sha256] == nil { table.removeAll(keepingCapacity: true) }
            table[sha256] = cookie
        }
    }

    func forget(_ sha256: String) {
        sessions.withLock { _ = $0.removeValue(forKey: sha256) }
    }
}
