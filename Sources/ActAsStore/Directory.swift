import ActAsCore
import ActAsCrypto
import Foundation
import NIOPosix

/// User directory, sign-in sessions and API tokens: the operations behind the CLI and the
/// console. Each writes the store first, then (in the server) the live state, so the change
/// is in force before the caller returns.
public final class Directory: Sendable {
    public let store: any Store
    /// nil for `actas` commands: the server learns their changes from the feed.
    public let live: LiveState?
    public let knownRoles: [String]
    public let hasher: PasswordHasher

    public init(store: any Store, live: LiveState?, knownRoles: [String], hasher: PasswordHasher = .standard) {
        self.store = store
        self.live = live
        self.knownRoles = knownRoles
        self.hasher = hasher
    }

    // MARK: users

    public struct ImportSummary: Sendable, Equatable {
        public var created: [String] = []
        public var updated: [String] = []
    }

    /// Creates or updates users by username, all or nothing. New users need a role only if the
    /// default (`employee`, or the lowest role) is not wanted; `mustExist`/`mustBeNew` make the
    /// single-user CLI commands strict.
    public func save(_ inputs: [UserRecordInput], mustBeNew: Bool = false, mustExist: Bool = false, now: Date = Date()) async throws -> ImportSummary {
        var seen: Set<String> = []
        var errors: [String] = []
        var users: [User] = []
        var summary = ImportSummary()
        for input in inputs {
            let label = input.origin.isEmpty ? input.username : "\(input.origin)"
            if !seen.insert(input.username).inserted {
                errors.append("\(label): username \(input.username) appears twice")
                continue
            }
            let existing = try await store.user(username: input.username)
            if mustBeNew, existing != nil { errors.append("\(label): user \(input.username) already exists (use `actas users set`)") }
            if mustExist, existing == nil { errors.append("\(label): no user named \(input.username)") }
            if let existing, let id = input.id, id != existing.id {
                errors.append("\(label): user \(input.username) has id \(existing.id); an import cannot change it to \(id)")
            }
            if existing == nil, let id = input.id, try await store.user(id: id) != nil {
                errors.append("\(label): id \(id) belongs to another user")
            }
            var user = existing ?? User(
                id: input.id ?? Secrets.identifier(prefix: "usr_"), username: input.username,
                role: knownRoles.contains("employee") ? "employee" : (knownRoles.last ?? "employee"),
                createdAt: now, updatedAt: now)
            if let email = input.email { user.email = email }
            if let name = input.name { user.name = name }
            if let role = input.role { user.role = role }
            if let groups = input.groups { user.groups = groups }
            if let orgUnit = input.orgUnit { user.orgUnit = orgUnit }
            if let status = input.status { user.status = status }
            if let lastLogin = input.lastLogin { user.lastLogin = lastLogin }
            user.updatedAt = now
            let problems = UserValidation.problems(user, knownRoles: knownRoles)
            errors.append(contentsOf: problems.map { "\(label): \($0)" })
            if let password = input.password {
                do {
                    user.passwordHash = try await hashOffLoop(password)
                } catch {
                    errors.append("\(label): \(error)")
                }
            }
            users.append(user)
            if existing == nil { summary.created.append(user.username) } else { summary.updated.append(user.username) }
        }
        guard errors.isEmpty else { throw ImportError(messages: errors) }
        try await store.saveUsers(users)
        if let live {
            for user in users { live.apply(userID: user.id, user: user) }
        }
        return summary
    }

    public func user(named username: String) async throws -> User {
        guard let user = try await store.user(username: username) else { throw StoreError.notFound("no user named \(username)") }
        return user
    }

    public func setStatus(_ username: String, _ status: User.Status, now: Date = Date()) async throws -> User {
        var user = try await user(named: username)
        user.status = status
        user.updatedAt = now
        try await store.saveUsers([user])
        live?.apply(userID: user.id, user: user)
        return user
    }

    // MARK: sign-in

    public enum SignInResult: Sendable {
        case signedIn(user: User, cookieValue: String, session: SignInSession)
        /// No such user, no password, or a wrong password: one answer for all three.
        case invalidCredentials(user: User?)
        /// Right password, but the account may not sign in.
        case notAllowed(user: User)
    }

    public func signIn(username: String, password: String, clientIP: String, ttl: TimeInterval, now: Date = Date()) async throws -> SignInResult {
        guard let user = try await store.user(username: username), let hash = user.passwordHash else {
            // Same work as a real check, so timing does not tell which usernames exist.
            let hasher = self.hasher
            try await NIOThreadPool.singleton.runIfActive { hasher.dummyVerify(password) }
            return .invalidCredentials(user: try await store.user(username: username))
        }
        let hasher = self.hasher
        let valid = try await NIOThreadPool.singleton.runIfActive { hasher.verify(password, against: hash) }
        guard valid else { return .invalidCredentials(user: user) }
        guard user.status.maySignIn else { return .notAllowed(user: user) }
        guard let started = try await startSession(for: user, clientIP: clientIP, ttl: ttl, now: now) else {
            return .notAllowed(user: user)  // suspended between the check and the write
        }
        return .signedIn(user: started.user, cookieValue: started.cookieValue, session: started.session)
    }

    /// A new sign-in session's cookie value and stored form (only the value's hash is kept).
    static func newSession(userID: String, clientIP: String, ttl: TimeInterval, now: Date) -> (cookieValue: String, session: SignInSession) {
        let cookieValue = Secrets.sessionToken()
        return (cookieValue, SignInSession(
            idHash: Secrets.hash(cookieValue), userID: userID, csrfToken: Secrets.csrfToken(),
            createdAt: now, expiresAt: now.addingTimeInterval(ttl), clientIP: clientIP))
    }

    /// After the store wrote a sign-in: this process enforces it at once (others hear the feed).
    func applySignedIn(_ user: User, _ session: SignInSession) {
        live?.apply(userID: user.id, user: user)
        live?.apply(sessionHash: session.idHash, session: session)
    }

    /// Writes a sign-in of an existing user who may sign in (password, client certificate):
    /// `last_login`, invited → active, the session. Nil when the user was suspended or deleted
    /// between the check and the write.
    func startSession(for user: User, clientIP: String, ttl: TimeInterval, now: Date) async throws -> (user: User, cookieValue: String, session: SignInSession)? {
        let (cookieValue, session) = Self.newSession(userID: user.id, clientIP: clientIP, ttl: ttl, now: now)
        let updated: User
        do {
            updated = try await store.recordSignIn(userID: user.id, at: now, session: session)
        } catch StoreError.notFound {
            return nil
        }
        applySignedIn(updated, session)
        return (updated, cookieValue, session)
    }

    public func signOut(sessionHash: String) async throws {
        try await store.deleteSession(idHash: sessionHash)
        live?.apply(sessionHash: sessionHash, session: nil)
    }

    private func hashOffLoop(_ password: String) async throws -> String {
        let hasher = self.hasher
        return try await NIOThreadPool.singleton.runIfActive { try hasher.hash(password) }
    }

    // MARK: API tokens

    /// Returns the token (shown once) and its record.
    public func createToken(for username: String, name: String, now: Date = Date()) async throws -> (token: String, record: APIToken) {
        let user = try await user(named: username)
        guard user.status.maySignIn else { throw StoreError.invalid("user \(username) is \(user.status.rawValue); tokens are for active users") }
        let token = Secrets.apiToken()
        let record = APIToken(id: Secrets.identifier(prefix: "tok_"), userID: user.id, name: name, tokenHash: Secrets.hash(token), createdAt: now)
        try await store.insertToken(record)
        live?.apply(tokenHash: record.tokenHash, token: record)
        return (token, record)
    }

    public func revokeToken(id: String, now: Date = Date()) async throws -> APIToken {
        let token = try await store.revokeToken(id: id, at: now)
        live?.apply(tokenHash: token.tokenHash, token: nil)
        return token
    }
}
