/// The head and body limits a parser enforces (`limits.*` in proxy.conf).
public struct HTTPLimits: Sendable, Equatable {
    public var maxRequestLine: Int
    public var maxHeaderBytes: Int
    public var maxHeaders: Int
    public var maxBody: Int64

    public init(maxRequestLine: Int = 8192, maxHeaderBytes: Int = 32768, maxHeaders: Int = 100, maxBody: Int64 = 100 << 20) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
        self.maxBody = maxBody
    }
}
