import Testing
@testable import ActAsCore

@Suite struct RoleRulesTests {
    @Test func ranksFollowOrderMostSeniorFirst() {
        #expect(sampleRoles.rank(of: "owner") == 0)
        #expect(sampleRoles.rank(of: "employee") == 4)
        #expect(sampleRoles.outranks("super_admin", "hr_admin"))
        #expect(!sampleRoles.outranks("hr_admin", "super_admin"))
        #expect(!sampleRoles.outranks("hr_admin", "hr_admin"))
    }

    @Test func unknownRoleRanksBelowEverything() {
        #expect(sampleRoles.rank(of: "intern") == 5)
        #expect(sampleRoles.outranks("employee", "intern"))
        // Two unknown roles are equal: neither may act as the other.
        #expect(!sampleRoles.outranks("intern", "contractor"))
        #expect(!sampleRoles.mayImpersonate("intern"))
    }

    @Test func privilegesComeFromTheirLists() {
        #expect(sampleRoles.mayImpersonate("hr_admin"))
        #expect(!sampleRoles.mayImpersonate("manager"))
        #expect(sampleRoles.isScoped("hr_admin"))
        #expect(!sampleRoles.isScoped("super_admin"))
        #expect(sampleRoles.isAuditor("owner"))
        #expect(!sampleRoles.isAuditor("hr_admin"))
        // Exact names only.
        #expect(!sampleRoles.mayImpersonate("HR_ADMIN"))
    }

    @Test func privilegedRoleMissingFromOrderIsUnranked() {
        let roles = RoleRules(order: ["owner", "employee"], impersonators: ["owner", "helpdesk"])
        #expect(roles.mayImpersonate("helpdesk"))
        #expect(roles.rank(of: "helpdesk") == roles.unrankedRank)
        #expect(!roles.outranks("helpdesk", "employee"))
    }

    @Test func duplicateRoleKeepsItsMostSeniorPlace() {
        let roles = RoleRules(order: ["owner", "admin", "owner"])
        #expect(roles.rank(of: "owner") == 0)
    }
}

@Suite struct OrgUnitTests {
    @Test(arguments: [
        ("acme/emea", "acme/emea", true),
        ("acme/emea", "acme/emea/sales", true),
        ("acme/emea", "acme/emea/sales/berlin", true),
        ("acme", "acme/emea", true),
        ("acme/emea", "acme/emea-evil", false),
        ("acme/emea", "acme/emeasales", false),
        ("acme/emea", "acme", false),
        ("acme/emea", "acme/apac/sales", false),
        ("acme/emea", "ACME/EMEA", false),
        ("acme/emea", "", false),
        ("", "acme/emea", false),
        ("", "", false),
        ("acme/emea/", "acme/emea/sales", false),
        ("acme/emea", "acme/emea/", false),
        ("/acme", "/acme/emea", false),
        ("acme/emea", "acme/emea//sales", false),
        ("acme//emea", "acme//emea", false),
    ])
    func subtree(root: String, unit: String, covered: Bool) {
        #expect(OrgUnit.covers(root, unit) == covered)
    }
}
