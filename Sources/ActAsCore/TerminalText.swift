/// Text for a terminal: every control character (C0, DEL, C1), line and paragraph separator and
/// invisible format character (bidi overrides and isolates, zero-width characters, BOM, tags) is
/// shown as `\uXXXX`, so values from the store or the log can never move the cursor, recolour,
/// retitle or reorder what the terminal shows. Every human-readable CLI output goes through
/// `safe` (tables, one-line messages, errors that echo input); JSON output does not need it.
public enum TerminalText {
    public static func mustEscape(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if value < 0x20 || (0x7F...0x9F).contains(value) { return true }
        if value < 0x7F { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate: return true
        default: return false
        }
    }

    public static func isSafe(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { !mustEscape($0) }
    }

    public static func safe(_ text: String) -> String {
        if isSafe(text) { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard mustEscape(scalar) else {
                out.append(scalar)
                continue
            }
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            }
        }
        return String(out)
    }

    /// `safe` line by line, keeping the line breaks: for multi-line messages (one problem a line).
    public static func safeLines(_ text: String) -> String {
        if isSafe(text) { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { safe(String($0)) }.joined(separator: "\n")
    }

    /// Characters refused in directory fields (names, emails, groups, org units): C0, DEL, C1,
    /// U+2028/U+2029 and the bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
    /// U+2066–U+2069). Narrower than `mustEscape`: zero-width joiners stay allowed, since names
    /// in several scripts need them.
    public static func isRefusedInDirectory(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
