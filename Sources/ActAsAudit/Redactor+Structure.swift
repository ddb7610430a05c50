/// Secrets whose field name alone does not give them away (issue 21, item 8):
///
/// - **JSON inside text.** A string value (JSON string, form or query value, multipart text
///   field, header value) whose first non-blank character is `{`, `[` or `"` and that parses as
///   JSON is logged as that JSON, redacted by the same rules and written compactly — still as a
///   string, since that is what was sent (GraphQL `variables`, webhook `payload=`, JSON encoded
///   twice). Text that starts with `{` or `[` but does not parse (a cut-off document, a Python
///   `repr`, JSON5) is replaced by `[REDACTED]` when it contains a redact key, since an app may
///   still read it leniently. Nesting counts against the body's depth limit.
/// - **Key/value pairs.** An object, or a group of form/multipart fields sharing a prefix
///   (`fields[0][name]` with `fields[0][value]`; `Tags.member.1.Key` with `Tags.member.1.Value`),
///   whose naming member (`key`, `name`, `k`, `Key`, `ParameterKey`, `Name`, …) holds a
///   sensitive name has its value members (`value`, `v`, `Value`, `ParameterValue`,
///   `Value__c`, `data`, …) redacted; other members (`type`, `description`) stay readable.
/// - **Nameless fields.** A name with no letter or digit (`=secret`, `"": …`, `name=""`, a part
///   without a name, `%20=…`) tells nothing about its value, so the value is redacted; the empty
///   (or punctuation-only) name itself is logged as sent, so the field stays visible.
extension Redactor {
    // MARK: - Nameless fields

    /// Whether a name has no letter or digit (ASCII or not).
    static func isNameless(_ name: String) -> Bool {
        for scalar in name.unicodeScalars {
            if scalar.isASCII {
                switch scalar.value {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return false
                default: continue
                }
            }
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil { return false }
        }
        return true
    }

    /// `isNameless` for ASCII bytes; a non-ASCII byte counts as a possible letter.
    static func isNameless(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in bytes {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x80...0xFF: return false
            default: continue
            }
        }
        return true
    }

    // MARK: - JSON inside text

    /// A text value as it may be logged (see the extension's documentation). `depth` is the
    /// nesting the text already sits at, so documents nested in strings share one depth limit.
    public func redactText(_ text: String, depth: Int = 0) -> String {
        guard let first = text.utf8.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }),
            first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "\"")
        else { return scrubTokens(text) }
        let bytes = Array(text.utf8)
        if depth < JSONParser.defaultMaxDepth,
            let value = try? JSONParser.parse(bytes, redactor: self, startDepth: depth)
        {
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count)
            JSONWriter.writeValue(value, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        if first != UInt8(ascii: "\""), containsRedactKey(text) { return Self.placeholder }
        return scrubTokens(text)
    }

    // MARK: - Key/value pairs

    /// Member names that name the pair (compared folded, after dropping Salesforce's `__c`).
    private static let namingKeys: Set<String> = [
        "key", "name", "k", "n", "id", "field", "fieldname", "fieldkey", "param", "paramname", "paramkey", "parameter",
        "parametername", "parameterkey", "attribute", "attributename", "attributekey", "property", "propertyname",
        "propertykey", "setting", "settingname", "settingkey", "variable", "variablename", "variablekey", "var", "varname",
        "label", "header", "headername", "option", "optionname", "optionkey", "tag", "tagkey", "tagname", "keyname",
        "envname", "configkey", "configname",
    ]
    /// Member names that hold the pair's value, besides any name containing `value`.
    private static let valueKeys: Set<String> = ["v", "val", "data", "content", "contents", "text", "str", "string", "body"]

    private static func foldedMemberName(_ name: some StringProtocol) -> String {
        var name = Substring(name)
        if name.count > 3, name.lowercased().hasSuffix("__c") { name = name.dropLast(3) }
        return String(String.UnicodeScalarView(name.unicodeScalars.compactMap { scalar in
            switch scalar.value {
            case 0x41...0x5A: return Unicode.Scalar(scalar.value | 0x20)
            case 0x61...0x7A, 0x30...0x39: return scalar
            default: return nil
            }
        }))
    }

    static func isNamingMember(_ name: some StringProtocol) -> Bool { namingKeys.contains(foldedMemberName(name)) }

    static func isValueMember(_ name: some StringProtocol) -> Bool {
        let folded = foldedMemberName(name)
        return folded.contains("value") || valueKeys.contains(folded)
    }

    /// The members of one object with the values of a secret-naming pair redacted.
    func redactingPairValues(_ members: [AuditValue.Member]) -> [AuditValue.Member] {
        guard members.count >= 2,
            members.contains(where: { member in
                guard case .string(let text) = member.value else { return false }
                return containsRedactKey(text) && Self.isNamingMember(member.key)  // the cheap test first
            })
        else { return members }
        return members.map { member in
            Self.isValueMember(member.key) && !Self.isNamingMember(member.key)
                ? AuditValue.Member(member.key, .string(Self.placeholder)) : member
        }
    }

    /// Positions of flat fields (form, query, multipart) whose value belongs to a pair that names
    /// a secret. Fields pair up by the prefix of their name before the last `.` or `[…]`.
    func pairValuePositions(names: [String], values: [String?]) -> Set<Int> {
        var namingGroups: Set<Substring> = []
        var hasNaming = false
        for (position, name) in names.enumerated() {
            guard let value = values[position], containsRedactKey(value) else { continue }  // the cheap test first
            let (group, leaf) = Self.splitFieldName(name)
            if Self.isNamingMember(leaf) {
                namingGroups.insert(group)
                hasNaming = true
            }
        }
        guard hasNaming else { return [] }
        var positions: Set<Int> = []
        for (position, name) in names.enumerated() {
            let (group, leaf) = Self.splitFieldName(name)
            if namingGroups.contains(group) && Self.isValueMember(leaf) && !Self.isNamingMember(leaf) { positions.insert(position) }
        }
        return positions
    }

    /// `fields[0][name]` → (`fields[0]`, `name`); `Tags.member.1.Key` → (`Tags.member.1`, `Key`);
    /// `name` → (``, `name`).
    static func splitFieldName(_ name: String) -> (group: Substring, leaf: Substring) {
        if name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
            return (name[..<open], name[name.index(after: open)..<name.index(before: name.endIndex)])
        }
        if let dot = name.lastIndex(of: ".") { return (name[..<dot], name[name.index(after: dot)...]) }
        return (name[name.startIndex..<name.startIndex], name[...])
    }
}
