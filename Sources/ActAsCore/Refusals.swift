/// Why starting an impersonation is refused (SPEC §6). Cases are declared in the order the rules
/// are checked; `rawValue` is the JSON `error` code.
public enum Refusal: String, Sendable, CaseIterable, Error {
    case csrf
    case notPermitted = "not_permitted"
    case `self`
    case chaining
    case targetNotFound = "target_not_found"
    case targetStatus = "target_status"
    case neverLoggedIn = "never_logged_in"
    case hierarchy
    case scope
    case consentRequired = "consent_required"
    case reasonRequired = "reason_required"

    public var code: String { rawValue }

    public var httpStatus: Int {
        switch self {
        case .targetNotFound: return 404
        case .reasonRequired: return 422
        default: return 403
        }
    }

    /// Addressed to the administrator, for HTML pages and the JSON `message`.
    public var sentence: String {
        switch self {
        case .csrf: return "The request could not be verified as coming from this site. Reload the page and try again."
        case .notPermitted: return "Your role may not act as other users."
        case .self: return "You cannot act as yourself."
        case .chaining: return "You are already acting as someone. Exit that session first."
        case .targetNotFound: return "There is no such user."
        case .targetStatus: return "This user's account status does not allow acting as them."
        case .neverLoggedIn: return "This user has never signed in."
        case .hierarchy: return "This user's role is equal to or above yours."
        case .scope: return "This user is outside your organisation unit."
        case .consentRequired: return "This user has not given consent to be acted as."
        case .reasonRequired: return "The reason is too short. Say why you need to act as this user."
        }
    }
}

/// Why a request made while impersonating is not forwarded (SPEC §7).
public enum RequestRefusal: String, Sendable, CaseIterable, Error {
    case readOnly = "read_only"
    case hiddenPath = "hidden_path"
    case badPathEncoding = "bad_path_encoding"

    public var code: String { rawValue }

    public var httpStatus: Int {
        switch self {
        case .readOnly, .hiddenPath: return 403
        case .badPathEncoding: return 400
        }
    }

    public var sentence: String {
        switch self {
        case .readOnly: return "This impersonation is read-only: only viewing (GET, HEAD, OPTIONS) is allowed."
        case .hiddenPath: return "This page is not available while acting as another user."
        case .badPathEncoding: return "The address contains encoded slashes, backslashes, NUL bytes or double encoding, which are not allowed while acting as another user."
        }
    }
}

/// A malformed field in a console or API request (SPEC §4): always `400`.
public enum InvalidInput: Error, Sendable, Equatable {
    case duration
    case mode
    /// Consent hours outside 1...`maximum` or not a whole number.
    case hours(maximum: Int)

    public var code: String {
        switch self {
        case .duration: return "invalid_duration"
        case .mode: return "invalid_mode"
        case .hours: return "invalid_hours"
        }
    }

    public var httpStatus: Int { 400 }

    /// Deliberately does not echo the input: messages end up in HTML.
    public var sentence: String {
        switch self {
        case .duration: return "The duration must look like 90s, 30m, 1h30m, 2h or 1d, and be at least one second."
        case .mode: return "The mode must be \"read-write\" or \"read-only\"."
        case .hours(let maximum): return "Consent hours must be a whole number from 1 to \(maximum)."
        }
    }
}
