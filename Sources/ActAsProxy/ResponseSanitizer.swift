import ActAsAudit
import ActAsCore
import ActAsHTTP
import ActAsPages
import NIOCore

/// The response side's decisions that need the proxy's types (the pure ones are in
/// `ActAsHTTP.ResponseSafety`): what a page shown as the target may be, the refusal page for
/// one that cannot carry the banner, and the public origin for rewritten `Location`s.
enum ResponseSanitizer {
    /// Refusal code for a document a navigation would show without the banner (SPEC §7).
    static let unrewritableCode = "unrewritable_response"
    /// `request_denied` reason for a `Set-Cookie` naming a cookie the proxy owns.
    static let proxyCookieReason = "proxy_owned_cookie"

    /// SPEC §7 for the response to a page load made while impersonating.
    static func verdict(_ head: ResponseHead, isHead: Bool, emptyBody: Bool, navigation: Bool) -> DocumentVerdict {
        DocumentVerdict.decide(
            status: head.status, isHead: isHead, emptyBody: emptyBody, contentTypes: head.block.values("content-type"),
            contentEncodings: head.block.values("content-encoding"), contentDispositions: head.block.values("content-disposition"),
            navigation: navigation)
    }

    /// `https://` and the host the request was forwarded for (the request side's validated
    /// public host), or nil when there is none to name.
    static func publicOrigin(host: ByteBuffer) -> String? {
        guard host.readableBytes > 0,
              host.readableBytesView.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else { return nil }
        return "https://" + String(buffer: host)
    }

    /// The answer to a navigation whose document cannot carry the banner: `502
    /// unrewritable_response`, a page that says so and carries the banner itself (SPEC §7:
    /// refusal pages shown while impersonating carry the banner and the way back), or JSON
    /// for a client that did not ask for HTML.
    static func refusal(
        code: String, banner: BannerInfo, html: Bool, requestID: RequestID, hstsLine: [UInt8], close: Bool, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let message = code == unrewritableCode
            ? "The application answered with a document the proxy cannot show with the impersonation banner"
                + " (compressed in a way it cannot read, XML or SVG, UTF-16, a frameset, or with conflicting types), so it is not shown."
            : "The application's page inflates to more than the proxy rewrites (limits.max_rewritten_page), so it is not shown."
        let body: String
        let contentType: String
        if html {
            contentType = "text/html; charset=utf-8"
            body = """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>502 Bad Gateway</title>
                <style>body{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:36rem;padding:0 1rem;color:#1f2328}code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
                <body>\(Banner.html(banner))<h1>502 Bad Gateway</h1><p>\(htmlEscaped(message))</p><p>Code: <code>\(code)</code></p><p>Request id: <code>\(requestID.string)</code></p><p><a href="/.actas/">Back to the ActAs console</a></p></body></html>

                """
        } else {
            contentType = "application/json"
            body = "{\"error\":\"\(code)\",\"message\":\"\(message)\",\"request_id\":\"\(requestID.string)\"}\n"
        }
        var buffer = allocator.buffer(capacity: 512 + body.utf8.count)
        buffer.writeString("HTTP/1.1 502 Bad Gateway\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n")
        buffer.writeString("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Request-Id: \(requestID.string)\r\n")
        buffer.writeBytes(hstsLine)
        if close { buffer.writeString("Connection: close\r\n") }
        buffer.writeString("\r\n")
        buffer.writeString(body)
        return buffer
    }

    /// The `request_denied` event for an upstream `Set-Cookie` the proxy dropped: the cookie's
    /// name (at most 64 bytes; its value is never logged) and the response it came with.
    static func refusedCookieEvent(name: String, requestID: RequestID, clientIP: String, log: AuditRequestFields?, status: Int) -> AuditRecord {
        AuditRecord(
            type: .requestDenied, requestID: requestID.string, clientIP: clientIP, method: log?.method, path: log?.path,
            status: status, user: log?.user, impersonator: log?.impersonator, sessionID: log?.sessionID, mode: log?.mode,
            reason: proxyCookieReason, detail: "the application's Set-Cookie for \(name), a cookie name the proxy owns, was dropped")
    }
}
