/// A security event for the request log (SPEC §8): sign-ins, consent and impersonation
/// changes, refusals. The console reports them; the audit writer records them.
public struct SecurityEvent: Sendable {
    public var type: String
    public var requestID: String?
    public var clientIP: String?
    /// Username the event concerns (the target while impersonating).
    public var user: String?
    public var impersonator: String?
    public var sessionID: String?
    public var mode: String?
    public var reason: String?
    public var endReason: String?
    /// Further fields, in order, for event types that need them.
    public var details: [(String, String)]

    public init(
        type: String, requestID: String? = nil, clientIP: String? = nil, user: String? = nil, impersonator: String? = nil,
        sessionID: String? = nil, mode: String? = nil, reason: String? = nil, endReason: String? = nil, details: [(String, String)] = []
    ) {
        self.type = type
        self.requestID = requestID
        self.clientIP = clientIP
        self.user = user
        self.impersonator = impersonator
        self.sessionID = sessionID
        self.mode = mode
        self.reason = reason
        self.endReason = endReason
        self.details = details
    }
}

public protocol SecurityEventRecorder: Sendable {
    func record(_ event: SecurityEvent)
}
