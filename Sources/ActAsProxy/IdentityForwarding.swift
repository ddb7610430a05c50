import ActAsCore
import ActAsCrypto
import ActAsStore
import Foundation
import Synchronization

/// The identity header lines for one (user, credential): username, email, groups and the
/// signed assertion, ready to copy into an upstream request head. Built once and shared by
/// every connection until shortly before the assertion expires: ES256 per request would cost
/// more than the whole proxy (ARCHITECTURE decision 6).
final class ForwardedIdentity: Sendable {
    /// The user the application sees (the target while impersonating).
    let user: User
    /// While impersonating: the administrator and the session the lines were made for.
    let actor: User?
    let impersonation: ImpersonationSession?
    /// Complete header lines, each ending in CRLF.
    let lines: [UInt8]
    /// Re-mint from here on, so a forwarded assertion always has a minute left.
    let refreshAt: Date
    /// The signing key's id and the issuer it was minted for.
    let kid: String
    let issuer: String

    init(user: User, actor: User? = nil, impersonation: ImpersonationSession? = nil, lines: [UInt8], refreshAt: Date, kid: String, issuer: String) {
        self.user = user
        self.actor = actor
        self.impersonation = impersonation
        self.lines = lines
        self.refreshAt = refreshAt
        self.kid = kid
        self.issuer = issuer
    }
}

/// Mints and caches `ForwardedIdentity` values for all event loops.
final class IdentityForwarding: Sendable {
    /// SPEC §5: `exp` at most five minutes after `iat`.
    static let assertionLifetime: TimeInterval = 300
    /// Re-mint when less than this is left.
    static let refreshMargin: TimeInterval = 60

    let live: LiveState
    let cookieJars = CookieJars()
    private let cache = Mutex<[String: ForwardedIdentity]>([:])

    init(live: LiveState) {
        self.live = live
    }

    /// The header lines for `principal`, from the cache when still fresh. `issuer` is the
    /// configured `assertion_issuer` or the request's public origin.
    func identity(for principal: LiveState.Principal, issuer: String, settings: ProxySettings, now: Date) -> ForwardedIdentity? {
        guard let ring = live.keyRing else { return nil }
        if let session = principal.impersonation {
            guard let target = principal.target else { return nil }
            let key = "i:" + session.id
            if let cached = cache.withLock({ $0[key] }), cached.refreshAt > now, cached.user == target, cached.actor == principal.user,
               cached.impersonation == session, cached.kid == ring.signing.kid, cached.issuer == issuer {
                return cached
            }
            guard let fresh = mint(target, actor: principal.user, session: session, ring: ring, issuer: issuer, settings: settings, now: now) else { return nil }
            cache.withLock { $0[key] = fresh }
            return fresh
        }
        let key = principal.session.map { "s:" + $0.idHash } ?? principal.token.map { "t:" + $0.id } ?? "u:" + principal.user.id
        if let cached = cache.withLock({ $0[key] }), cached.refreshAt > now, cached.user == principal.user,
           cached.kid == ring.signing.kid, cached.issuer == issuer {
            return cached
        }
        guard let fresh = mint(principal.user, ring: ring, issuer: issuer, settings: settings, now: now) else { return nil }
        cache.withLock { cache in
            if cache.count > 50_000 { cache = cache.filter { $0.value.refreshAt > now } }
            cache[key] = fresh
        }
        return fresh
    }

    /// The lines for `user`; while impersonating `user` is the target, and the administrator
    /// and session add the impersonator headers and the assertion's `act`, `sid` and `mode`.
    func mint(_ user: User, actor: User? = nil, session: ImpersonationSession? = nil, ring: KeyRing, issuer: String,
              settings: ProxySettings, now: Date) -> ForwardedIdentity? {
        let issuedAt = Int64(now.timeIntervalSince1970)
        var claims = AssertionClaims(
            issuer: issuer, audience: settings.assertionAudience, subject: user.id, username: user.username, email: user.email,
            groups: user.groups, role: user.role, issuedAt: issuedAt, expiresAt: issuedAt + Int64(Self.assertionLifetime),
            jwtID: Secrets.identifier(prefix: "jti_"))
        if let actor, let session {
            claims.actor = .init(subject: actor.id, username: actor.username, email: actor.email)
            claims.sessionID = session.id
            claims.mode = session.mode.rawValue
        }
        guard let token = try? AssertionSigner.sign(claims, with: ring.signing) else { return nil }
        var lines: [UInt8] = []
        lines.reserveCapacity(token.utf8.count + 400)
        Self.appendLine(&lines, settings.userHeader, user.username)
        Self.appendLine(&lines, settings.emailHeader, user.email)
        Self.appendLine(&lines, settings.groupsHeader, user.groups.joined(separator: ","))
        if let actor, let session {
            Self.appendLine(&lines, Self.impersonatorUser, actor.username)
            Self.appendLine(&lines, Self.impersonatorEmail, actor.email)
            Self.appendLine(&lines, Self.impersonationID, session.id)
            Self.appendLine(&lines, Self.impersonationMode, session.mode.rawValue)
            Self.appendLine(&lines, Self.impersonationExpires, RFC3339.string(from: session.expiresAt))
        }
        Self.appendLine(&lines, settings.assertionHeader, token)
        return ForwardedIdentity(
            user: user, actor: actor, impersonation: session, lines: lines,
            refreshAt: Date(timeIntervalSince1970: TimeInterval(issuedAt) + Self.assertionLifetime - Self.refreshMargin),
            kid: ring.signing.kid, issuer: issuer)
    }

    // SPEC §5: these names are fixed.
    static let impersonatorUser = Array("X-Impersonator-User".utf8)
    static let impersonatorEmail = Array("X-Impersonator-Email".utf8)
    static let impersonationID = Array("X-Impersonation-Id".utf8)
    static let impersonationMode = Array("X-Impersonation-Mode".utf8)
    static let impersonationExpires = Array("X-Impersonation-Expires".utf8)

    /// `Name: value\r\n`, with any control character in the value dropped: values are
    /// validated when users are saved, and this keeps a bad row from splitting a header.
    static func appendLine(_ out: inout [UInt8], _ name: [UInt8], _ value: String) {
        out.append(contentsOf: name)
        out.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
        for byte in value.utf8 where byte >= 0x20 && byte != 0x7F { out.append(byte) }
        out.append(contentsOf: [0x0D, 0x0A])
    }
}

/// Per connection: the identity of the last request, reused while nothing changed (same
/// credential bytes, same live-state generation, assertion fresh, session unexpired). Most
/// requests on a keep-alive connection then cost a few comparisons.
/// A class, confined to its connection's event loop: reusing it costs one reference count,
/// where copying the principal (users, sessions: dozens of strings shared with the other
/// loops) cost dozens of contended ones.
final class IdentityMemo {
    let credential: [UInt8]
    let generation: UInt64
    let principal: LiveState.Principal
    let forwarded: ForwardedIdentity
    /// Host the issuer was derived from (empty when `assertion_issuer` is configured).
    let issuerHost: [UInt8]
    let expiresAt: Date
    /// What the request path asks every time, read once.
    let impersonating: Bool
    let pendingNotice: ImpersonationSession?

    init(credential: [UInt8], generation: UInt64, principal: LiveState.Principal, forwarded: ForwardedIdentity,
         issuerHost: [UInt8], expiresAt: Date) {
        self.credential = credential
        self.generation = generation
        self.principal = principal
        self.forwarded = forwarded
        self.issuerHost = issuerHost
        self.expiresAt = expiresAt
        self.impersonating = principal.impersonation != nil
        self.pendingNotice = principal.impersonation == nil ? principal.pendingNotice : nil
    }

    func matches(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, generation: UInt64, now: Date) -> Bool {
        guard generation == self.generation, !range.isEmpty, range.count == credential.count, now < expiresAt else { return false }
        return credential.withUnsafeBytes { memo in
            memcmp(memo.baseAddress!, raw.baseAddress! + range.lowerBound, range.count) == 0
        }
    }
}
