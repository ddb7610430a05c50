import Foundation

/// What a verified ID token says about the person (SPEC §10.3), already mapped by `[auth.oidc]`.
public struct OIDCClaims: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var providerSessionID: String
    public var username: String
    public var email: String
    public var emailVerified: Bool
    public var name: String
    public var role: String
    public var groups: [String]
    public var orgUnit: String

    public init(issuer: String, subject: String, providerSessionID: String, username: String, email: String, emailVerified: Bool,
                name: String, role: String, groups: [String], orgUnit: String) {
        self.issuer = issuer
        self.subject = subject
        self.providerSessionID = providerSessionID
        self.username = username
        self.email = email
        self.emailVerified = emailVerified
        self.name = name
        self.role = role
        self.groups = groups
        self.orgUnit = orgUnit
    }
}
