/// `impersonation.hidden_paths` (SPEC §7): paths answered with `403 hidden_path` while
/// impersonating. Match against the output of `PathNormalizer`, never the raw path.
public struct HiddenPaths: Sendable, Equatable {
    public let patterns: [PathPattern]

    /// Patterns are normalised like request paths (so `/a%7eb/*` or `/private//*` can match at
    /// all), then compared case-insensitively unless `caseSensitive` (`paths_case_sensitive`).
    public init(_ patterns: [String], caseSensitive: Bool = false) {
        self.patterns = patterns.map { pattern in
            PathPattern(PathNormalizer.normalized(pattern, strict: false) ?? pattern, caseSensitive: caseSensitive)
        }
    }

    public var isEmpty: Bool { patterns.isEmpty }

    public func isHidden(_ normalizedPath: UnsafeRawBufferPointer) -> Bool {
        for pattern in patterns where pattern.matches(normalizedPath) { return true }
        return false
    }

    public func isHidden(_ normalizedPath: String) -> Bool {
        var path = normalizedPath
        return path.withUTF8 { isHidden(UnsafeRawBufferPointer($0)) }
    }
}
