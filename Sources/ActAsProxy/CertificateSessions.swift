import ActAsStore
import Synchronization

/// The session each client certificate signed in, shared by this instance's connections: a
/// new connection with the same certificate and no cookie (a script with `curl --cert`, a
/// browser's parallel connections) goes on in that session while it lives, instead of a new
/// sign-in, a new store row and a new `login` event per connection. Connections and HTTP/2
/// streams that arrive while the certificate's sign-in is under way wait for that one.
final class CertificateSessions: Sendable {
    typealias SignInResult = Result<Directory.CertificateSignInResult, any Error>
    typealias SignInWaiter = @Sendable (SignInResult) -> Void

    /// Beyond this many certificates the table starts over (each entry is ~150 bytes).
    static let capacity = 10_000

    private let sessions = Mutex<[String: [UInt8]]>([:])
    /// Sign-ins under way, by certificate, with who waits for each.
    private let signingIn = Mutex<[String: [SignInWaiter]]>([:])

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

    /// True when no sign-in of `sha256` is under way: the caller signs in and then calls
    /// `finishSignIn`. Otherwise `waiter` gets that sign-in's result (a browser's parallel
    /// first connections, a connection's concurrent first streams: one session, one `login`).
    func startSignIn(_ sha256: String, orWait waiter: @escaping SignInWaiter) -> Bool {
        signingIn.withLock { table in
            if table[sha256] != nil {
                table[sha256]!.append(waiter)
                return false
            }
            table[sha256] = []
            return true
        }
    }

    /// Remembers a new session, then hands the result to everyone who waited for it.
    func finishSignIn(_ sha256: String, _ result: SignInResult) {
        if case .success(.signedIn(_, let cookie, _)) = result { remember(Array(cookie.utf8), for: sha256) }
        let waiters = signingIn.withLock { $0.removeValue(forKey: sha256) ?? [] }
        for waiter in waiters { waiter(result) }
    }
}
