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
    let user: User
    /// Complete header lines, each ending in CRLF.
    let lines: [UInt8]
    /// Re-mint from here on, so a forwarded assertion always has a minute left.
    let refreshAt: Date
    /// The signing key's id and the issuer it was minted for.
    let kid: String
    let issuer: String

    init(user: User, lines: [UInt8], refreshAt: Date, kid: String, issuer: String) {
        self.user = user
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
    private let cache = Mutex<[String: ForwardedIdentity]>([:])

    init(live: LiveState) {
        self.live = live
    }

    /// The header lines for `principal`, from the cache when still fresh. `issuer` is the
    /// configured `assertion_issuer` or the request's public origin.
    func identity(for principal: LiveState.Principal, issuer: String, settings: ProxySettings, now: Date) -> ForwardedIdentity? {
        guard let ring = live.keyRing else { return nil }
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

    func mint(_ user: User, ring: KeyRing, issuer: String, settings: ProxySettings, now: Date) -> ForwardedIdentity? {
        let issuedAt = Int64(now.timeIntervalSince1970)
        let claims = AssertionClaims(
            issuer: issuer, audience: settings.assertionAudience, subject: user.id, username: user.username, email: user.email,
            groups: user.groups, role: user.role, issuedAt: issuedAt, expiresAt: issuedAt + Int64(Self.assertionLifetime),
            jwtID: Secrets.identifier(prefix: "jti_"))
        guard let token = try? AssertionSigner.sign(claims, with: ring.signing) else { return nil }
        var lines: [UInt8] = []
        lines.reserveCapacity(token.utf8.count + 160)
        Self.appendLine(&lines, settings.userHeader, user.username)
        Self.appendLine(&lines, settings.emailHeader, user.email)
        Self.appendLine(&lines, settings.groupsHeader, user.groups.joined(separator: ","))
        Self.appendLine(&lines, settings.assertionHeader, token)
        return ForwardedIdentity(
            user: user, lines: lines, refreshAt: Date(timeIntervalSince1970: TimeInterval(issuedAt) + Self.assertionLifetime - Self.refreshMargin),
            kid: ring.signing.kid, issuer: issuer)
    }

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
struct IdentityMemo {
    var credential: [UInt8]
    var generation: UInt64
    var principal: LiveState.Principal
    var forwarded: ForwardedIdentity
    /// Host the issuer was derived from (empty when `assertion_issuer` is configured).
    var issuerHost: [UInt8]
    var expiresAt: Date

    func matches(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, generation: UInt64, now: Date) -> Bool {
        guard generation == self.generation, range.count == credential.count, now < expiresAt else { return false }
        return credential.withUnsafeBytes { memo in
            memcmp(memo.baseAddress!, raw.baseAddress! + range.lowerBound, range.count) == 0
        }
    }
}
