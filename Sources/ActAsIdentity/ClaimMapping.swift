import ActAsConfig
import ActAsCore
import Foundation

public enum ClaimMappingFailure: Error, Sendable, Equatable {
    /// No claim value maps to a role and `default_role` is "".
    case noRole
    /// The username claim is missing or empty.
    case noUsername
}

/// Claims → user fields, by `[auth.oidc]`. Pure.
public struct ClaimMapping: Sendable {
    public var settings: ActAsConfig.OIDC
    /// `roles.order`, highest first.
    public var roleOrder: [String]

    public init(settings: ActAsConfig.OIDC, roleOrder: [String]) {
        self.settings = settings
        self.roleOrder = roleOrder
    }

    public func map(_ claims: JSONObject) -> Result<OIDCClaims, ClaimMappingFailure> {
        let username = (claims.string(settings.usernameClaim) ?? "").trimmingCharacters(in: .whitespaces)
        guard !username.isEmpty, !username.contains(where: { $0.isNewline || $0 == "\0" }) else { return .failure(.noUsername) }
        guard let role = role(for: claims.strings(settings.roleClaim)) else { return .failure(.noRole) }
        return .success(OIDCClaims(
            issuer: claims.string("iss") ?? "", subject: claims.string("sub") ?? "", providerSessionID: claims.string("sid") ?? "",
            username: username, email: claims.string("email") ?? "", emailVerified: claims.bool("email_verified"),
            name: claims.string("name") ?? "", role: role, groups: groups(claims.strings(settings.groupsClaim)),
            orgUnit: settings.orgUnitClaim.isEmpty ? "" : (claims.string(settings.orgUnitClaim) ?? "")))
    }

    /// The highest-ranked role any value maps to, else `default_role` ("" → nil: refuse).
    public func role(for values: [String]) -> String? {
        let mapped = values.compactMap { settings.roleMap[$0] }
        if let best = mapped.min(by: { rank($0) < rank($1) }) { return best }
        return settings.defaultRole.isEmpty ? nil : settings.defaultRole
    }

    func rank(_ role: String) -> Int { roleOrder.firstIndex(of: role) ?? Int.max }

    /// `groups_allow` filters first (exact, or prefix with a trailing `*`), then `max_groups`
    /// caps, keeping claim order; duplicates count once. A group the directory cannot hold (a
    /// comma would split `X-Forwarded-Groups`, a control character a header) is dropped rather
    /// than refusing the person's sign-in.
    public func groups(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        var kept: [String] = []
        for group in values where UserValidation.checkGroup(group) == nil && allowed(group) && seen.insert(group).inserted {
            guard kept.count < settings.maxGroups else { break }
            kept.append(group)
        }
        return kept
    }

    func allowed(_ group: String) -> Bool {
        if settings.groupsAllow.isEmpty { return true }
        return settings.groupsAllow.contains { pattern in
            pattern.hasSuffix("*") ? group.hasPrefix(String(pattern.dropLast())) : group == pattern
        }
    }
}
