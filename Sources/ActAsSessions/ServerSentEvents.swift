/// Server-Sent Events framing (WHATWG HTML §9.2): each line of `data` becomes its own `data:`
/// field, so no value can end an event early or forge a field; `id` and `event` may not carry
/// a line break at all (dropped when they do).
public enum ServerSentEvent {
    public static func frame(id: String? = nil, event: String? = nil, data: String) -> String {
        var out = ""
        if let event, !containsLineBreak(event) { out += "event: \(event)\n" }
        if let id, !containsLineBreak(id), !id.contains("\0") { out += "id: \(id)\n" }
        for line in lines(data) { out += "data: \(line)\n" }
        return out + "\n"
    }

    /// A comment line: ignored by EventSource, keeps idle intermediaries from closing the stream.
    public static func comment(_ text: String) -> String {
        lines(text).map { ": \($0)\n" }.joined() + "\n"
    }

    /// `retry:` — how long a browser waits before reconnecting.
    public static func retry(milliseconds: Int) -> String {
        "retry: \(milliseconds)\n\n"
    }

    /// Lines as the SSE parser sees them: CRLF, CR and LF each end one.
    static func lines(_ text: String) -> [Substring] {
        var result: [Substring] = []
        var start = text.startIndex
        var index = text.startIndex
        // `Character` would merge "\r\n" into one grapheme: walk the scalars.
        let scalars = text.unicodeScalars
        var scalarIndex = scalars.startIndex
        while scalarIndex != scalars.endIndex {
            let scalar = scalars[scalarIndex]
            if scalar == "\n" || scalar == "\r" {
                index = scalarIndex
                result.append(text[start..<index])
                var next = scalars.index(after: scalarIndex)
                if scalar == "\r", next != scalars.endIndex, scalars[next] == "\n" { next = scalars.index(after: next) }
                start = next
                scalarIndex = next
                continue
            }
            scalarIndex = scalars.index(after: scalarIndex)
        }
        result.append(text[start...])
        return result
    }

    static func containsLineBreak(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }
    }
}
