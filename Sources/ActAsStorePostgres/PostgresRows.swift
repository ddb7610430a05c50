import ActAsCore
import ActAsStore
import Foundation

/// Rows to records, exactly as `SQLiteStore` reads its own (same columns, same defaults).
extension PostgresStore {
    static let epoch = Date(timeIntervalSince1970: 0)

    static func encodeGroups(_ groups: [String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: groups, options: [.withoutEscapingSlashes])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func decodeGroups(_ text: String?) -> [String] {
        guard let text, let data = text.data(using: .utf8),
              let groups = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return groups
    }

    static func user(_ row: Row) -> User {
        User(
            id: row.string("id") ?? "",
            username: row.string("username") ?? "",
            email: row.string("email") ?? "",
            name: row.string("name") ?? "",
            role: row.string("role") ?? "",
            groups: decodeGroups(row.string("groups_json")),
            orgUnit: row.string("org_unit") ?? "",
            // An unreadable status fails closed.
            status: row.string("status").flatMap(User.Status.init(rawValue:)) ?? .suspended,
            lastLogin: row.date("last_login"),
            passwordHash: row.string("password_hash"),
            createdAt: row.date("created_at") ?? epoch,
            updatedAt: row.date("updated_at") ?? epoch)
    }

    static func session(_ row: Row) -> SignInSession {
        SignInSession(
            idHash: row.string("id_hash") ?? "",
            userID: row.string("user_id") ?? "",
            csrfToken: row.string("csrf_token") ?? "",
            createdAt: row.date("created_at") ?? epoch,
            expiresAt: row.date("expires_at") ?? epoch,
            clientIP: row.string("client_ip") ?? "")
    }

    static func token(_ row: Row) -> APIToken {
        APIToken(
            id: row.string("id") ?? "",
            userID: row.string("user_id") ?? "",
            name: row.string("name") ?? "",
            tokenHash: row.string("token_hash") ?? "",
            createdAt: row.date("created_at") ?? epoch,
            revokedAt: row.date("revoked_at"))
    }

    static func signingKey(_ row: Row) -> SigningKeyRecord? {
        guard let kid = row.string("kid"), let bytes = row.bytes("private_key") else { return nil }
        return SigningKeyRecord(kid: kid, privateKey: bytes, createdAt: row.date("created_at") ?? epoch, retiredAt: row.date("retired_at"))
    }

    static func consent(_ row: Row) -> Consent {
        Consent(
            userID: row.string("user_id") ?? "",
            grantedAt: row.date("granted_at") ?? epoch,
            expiresAt: row.date("expires_at") ?? epoch,
            revokedAt: row.date("revoked_at"))
    }

    static func impersonation(_ row: Row) -> ImpersonationSession? {
        guard let id = row.string("id"), let mode = row.string("mode").flatMap(ImpersonationMode.init(rawValue:)) else { return nil }
        return ImpersonationSession(
            id: id,
            actorID: row.string("actor_id") ?? "",
            targetID: row.string("target_id") ?? "",
            reason: row.string("reason") ?? "",
            mode: mode,
            startedAt: row.date("started_at") ?? epoch,
            expiresAt: row.date("expires_at") ?? epoch,
            endedAt: row.date("ended_at"),
            endReason: row.string("end_reason").flatMap(EndReason.init(rawValue:)),
            noticePending: (row.int("notice_pending") ?? 0) != 0,
            signInSession: row.string("sign_in_session"))
    }
}
