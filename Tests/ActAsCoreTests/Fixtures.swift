import Foundation
@testable import ActAsCore

/// A fixed clock: tests never read the real time.
let now = Date(timeIntervalSince1970: 1_800_000_000)

func minutes(_ count: Double) -> TimeInterval { count * 60 }
func hours(_ count: Double) -> TimeInterval { count * 3_600 }

/// The sample config's `[roles]`.
let sampleRoles = RoleRules(
    order: ["owner", "super_admin", "hr_admin", "manager", "employee"],
    impersonators: ["owner", "super_admin", "hr_admin"],
    scoped: ["hr_admin"],
    auditors: ["owner", "super_admin"]
)

let samplePolicy = ImpersonationPolicy(roles: sampleRoles, rules: ImpersonationRules())

/// A scoped HR administrator in `acme/emea`.
let hrAdmin = User(id: "usr_hr", username: "hana", role: "hr_admin", orgUnit: "acme/emea", lastLogin: now - hours(1))

/// An employee under the administrator's org unit who has signed in before.
let employee = User(id: "usr_jdoe", username: "jdoe", role: "employee", orgUnit: "acme/emea/sales", lastLogin: now - hours(48))

/// Consent given an hour ago, for another hour.
let activeConsent = Consent(userID: employee.id, grantedAt: now - hours(1), expiresAt: now + hours(1))
