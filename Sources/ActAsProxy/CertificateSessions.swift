import ActAsStore
import NIOCore
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
    /// How long a sign-in keeps others waiting: after this a waiter gives up (503) and a new
    /// arrival signs in itself, so one hung store call cannot hold a certificate for good.
    static let patience = TimeAmount.seconds(10)

    /// Whose turn it is: run the sign-in (and pass the token to `finishSignIn`), or wait.
    enum SignInTurn: Equatable {
        case lead(UInt64)
        case wait
    }

    private struct Pending {
        var token: UInt64
        var started: NIODeadline
        var waiters: [SignInWaiter]
    }

    private let sessions = Mutex<[String: [UInt8]]>([:])
    /// Sign-ins under way, by certificate and user name, with who waits for each.
    private let signingIn = Mutex<(nextToken: UInt64, pending: [String: Pending])>((1, [:]))

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

    /// `.lead` when no sign-in of this certificate as `username` is under way (or the one under
    /// way is older than `patience`): the caller signs in, then calls `finishSignIn`. Otherwise
    /// `waiter` gets that sign-in's result (a browser's parallel first connections, a
    /// connection's concurrent first streams: one session, one `login` event).
    func startSignIn(_ sha256: String, username: String, now: NIODeadline = .now(), orWait waiter: @escaping SignInWaiter) -> SignInTurn {
        let key = sha256 + "\n" + username
        return signingIn.withLock { state in
            if var pending = state.pending[key], now - pending.started < Self.patience {
                pending.waiters.append(waiter)
                state.pending[key] = pending
                return .wait
            }
            // A stale sign-in's waiters wait for this one now (their own timers may end them first).
            let token = state.nextToken
            state.nextToken += 1
            state.pending[key] = Pending(token: token, started: now, waiters: state.pending[key]?.waiters ?? [])
            return .lead(token)
        }
    }

    /// Remembers a new session, then hands the result to everyone who waited for this sign-in
    /// (outside the lock: a waiter may start the next one).
    func finishSignIn(_ sha256: String, username: String, token: UInt64, _ result: SignInResult) {
        if case .success(.signedIn(_, let cookie, _)) = result { remember(Array(cookie.utf8), for: sha256) }
        let key = sha256 + "\n" + username
        let waiters = signingIn.withLock { state -> [SignInWaiter] in
            guard let pending = state.pending[key], pending.token == token else { return [] }
            state.pending[key] = nil
            return pending.waiters
        }
        for waiter in waiters { waiter(result) }
    }
}
