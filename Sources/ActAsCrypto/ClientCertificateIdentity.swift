import ActAsCore
import Crypto
import SwiftASN1
import X509

/// Who a verified client certificate names (SPEC §10.3 `auth.mtls.username_from`), and its
/// fingerprint for the sign-in event. Pure: the TLS layer has already verified the chain.
public struct ClientCertificateIdentity: Sendable, Equatable {
    /// Lower-case hex of the SHA-256 of the DER certificate (`cert_sha256`).
    public var sha256: String
    /// The username the rule gives, or why there is none.
    public var username: Result<String, Problem>

    public enum Problem: Error, Sendable, Equatable {
        /// The certificate has no name of the configured kind.
        case missing(String)
        /// The name is not a valid username (UserValidation.checkUsername).
        case invalid(String)
        case unparseable
    }

    /// The subject alternative names a rule can use, in certificate order.
    public enum SubjectAlternativeName: Sendable, Equatable {
        case email(String)
        case dns(String)
    }

    /// `username_from` values.
    public enum Rule: String, Sendable, CaseIterable {
        case cn
        case sanEmail = "san_email"
        case sanEmailLocal = "san_email_local"
        case sanDNS = "san_dns"
    }

    public init(der: [UInt8], rule: Rule) {
        sha256 = hexString(SHA256.hash(data: der))
        guard let certificate = try? Certificate(derEncoded: der) else {
            username = .failure(.unparseable)
            return
        }
        var names: [SubjectAlternativeName] = []
        if let extension_ = try? certificate.extensions.subjectAlternativeNames {
            for name in extension_ {
                switch name {
                case .rfc822Name(let value): names.append(.email(value))
                case .dnsName(let value): names.append(.dns(value))
                default: break
                }
            }
        }
        var commonNames: [String] = []
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == ASN1ObjectIdentifier.RDNAttributeType.commonName {
                if let value = String(attribute.value) { commonNames.append(value) }
            }
        }
        username = Self.username(rule: rule, commonNames: commonNames, subjectAlternativeNames: names)
    }

    /// The rule applied to the certificate's names. The first name of the kind counts (in
    /// certificate order): the CA that issued it is trusted for all of them. Email addresses
    /// and DNS names are case-insensitive, so they map to lower case; a CN is taken as written.
    /// A name that is not a valid username is refused, never rewritten into one.
    public static func username(rule: Rule, commonNames: [String], subjectAlternativeNames: [SubjectAlternativeName]) -> Result<String, Problem> {
        let candidate: String?
        switch rule {
        case .cn:
            candidate = commonNames.first
        case .sanEmail, .sanEmailLocal:
            let email = subjectAlternativeNames.lazy.compactMap { name -> String? in
                if case .email(let value) = name { return value }
                return nil
            }.first
            if rule == .sanEmail {
                candidate = email?.lowercased()
            } else {
                // A mailbox without `@` (rfc822Name may name a whole domain) has no local part.
                candidate = email.flatMap { value in
                    guard let at = value.lastIndex(of: "@"), at != value.startIndex else { return nil }
                    return String(value[..<at]).lowercased()
                }
            }
        case .sanDNS:
            candidate = subjectAlternativeNames.lazy.compactMap { name -> String? in
                if case .dns(let value) = name { return value.lowercased() }
                return nil
            }.first
        }
        guard let candidate else { return .failure(.missing(rule.rawValue)) }
        if UserValidation.checkUsername(candidate) != nil { return .failure(.invalid(candidate)) }
        return .success(candidate)
    }
}
