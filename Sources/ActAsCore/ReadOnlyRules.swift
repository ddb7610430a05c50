/// What a read-only impersonation refuses with `403 read_only` (SPEC §7): any method but GET,
/// HEAD and OPTIONS, a method-override header asking for one, and protocol upgrades.
public enum ReadOnlyRules {
    /// The refusal for a request in a read-only session, nil when it may go ahead.
    /// `headers` are (name, value) pairs as received. Inlinable so that it is specialised for the
    /// caller's header storage instead of iterating it through generic witnesses.
    @inlinable
    public static func refusal(
        method: String, headers: some Sequence<(String, String)>, isUpgrade: Bool
    ) -> RequestRefusal? {
        if isUpgrade || !isSafeMethod(method) { return .readOnly }
        for (name, value) in headers where isMethodOverrideHeader(name) && asksForUnsafeMethod(value) {
            return .readOnly
        }
        return nil
    }

    /// GET, HEAD or OPTIONS. Methods are case-sensitive (RFC 9110 §9.1), so `get` is not safe;
    /// TRACE and CONNECT are not safe here either.
    public static func isSafeMethod(_ method: String) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS"
    }

    /// `X-HTTP-Method-Override`, `X-HTTP-Method` or `X-Method-Override`, in any case and with
    /// `_` standing for `-` (the spellings frameworks and CGI-style gateways accept).
    public static func isMethodOverrideHeader(_ name: String) -> Bool {
        withUTF8Bytes(name) { name in
            // Cheap rejection of every other header: all three are 13 to 22 bytes and start with "x".
            guard name.count >= 13, name.count <= 22, asciiLower(name[0]) == UInt8(ascii: "x") else { return false }
            return headerNameEquals(name, "x-http-method-override")
                || headerNameEquals(name, "x-http-method")
                || headerNameEquals(name, "x-method-override")
        }
    }

    /// Whether an override value names a method other than GET, HEAD or OPTIONS. Values are
    /// case-insensitive and may be comma-separated lists; empty items are ignored; anything
    /// unrecognised counts as unsafe.
    public static func asksForUnsafeMethod(_ value: String) -> Bool {
        withUTF8Bytes(value) { value in
            var itemStart = 0
            for index in 0..<value.count where value[index] == UInt8(ascii: ",") {
                if !isSafeOverrideItem(UnsafeBufferPointer(rebasing: value[itemStart..<index])) { return true }
                itemStart = index + 1
            }
            return !isSafeOverrideItem(UnsafeBufferPointer(rebasing: value[itemStart...]))
        }
    }

    /// `name` equals the lower-case, dash-spelled `expected`, ignoring case and `_` vs `-`.
    private static func headerNameEquals(_ name: UnsafeBufferPointer<UInt8>, _ expected: StaticString) -> Bool {
        guard name.count == expected.utf8CodeUnitCount else { return false }
        let expected = expected.utf8Start
        for index in 0..<name.count {
            let byte = name[index] == UInt8(ascii: "_") ? UInt8(ascii: "-") : asciiLower(name[index])
            if byte != expected[index] { return false }
        }
        return true
    }

    private static func isSafeOverrideItem(_ item: UnsafeBufferPointer<UInt8>) -> Bool {
        @inline(__always) func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = 0
        var end = item.count
        while start < end && isBlank(item[start]) { start += 1 }
        while end > start && isBlank(item[end - 1]) { end -= 1 }
        if start == end { return true }
        let method = UnsafeBufferPointer(rebasing: item[start..<end])
        return equalsIgnoringASCIICase(method, "get") || equalsIgnoringASCIICase(method, "head")
            || equalsIgnoringASCIICase(method, "options")
    }
}
