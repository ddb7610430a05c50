import ActAsCore
import ActAsPages
import NIOCore

/// Answers the proxy gives itself (refusals, upstream failures). JSON for programs, a short
/// HTML page for browsers; always with the request id, so a user can quote it to support.
enum ErrorResponse {
    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 409: return "Conflict"
        case 414: return "URI Too Long"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Error"
        }
    }

    /// The error code in JSON bodies for statuses the codec produces.
    static func code(forStatus status: Int) -> String {
        switch status {
        case 408: return "header_timeout"
        case 413: return "body_too_large"
        case 414: return "uri_too_long"
        case 417: return "expectation_failed"
        case 431: return "headers_too_large"
        case 505: return "version_not_supported"
        default: return "bad_request"
        }
    }

    static func jsonEscaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0x7F:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }


    /// The page for browsers. While impersonating (SPEC §7) it carries the banner right after
    /// `<body>`, as the application's pages do, and a link back, so a refusal is no dead end.
    static func page(status: Int, message: String, requestID: String?, impersonating: ImpersonationRefusalPage?) -> String {
        let banner = impersonating.map { Banner.html($0.banner) } ?? ""
        let back = impersonating.map {
            "<p><a href=\"\(htmlEscaped($0.back))\" data-actas-back=\"\">Go back</a></p>"
        } ?? ""
        return """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><title>\(status) \(reasonPhrase(status))</title>
            <style>body{font:16px/1.5 system-ui,sans-serif;margin:3rem auto;max-width:36rem;padding:0 1rem;color:#1f2328}code{background:#f3f4f6;padding:.1rem .3rem;border-radius:4px}</style></head>
            <body>\(banner)<h1>\(status) \(reasonPhrase(status))</h1><p>\(htmlEscaped(message))</p>\(back)\(requestID.map { "<p>Request id: <code>\($0)</code></p>" } ?? "")</body></html>

            """
    }

    /// A complete response. `extraHeaders` are full lines ending in CRLF.
    static func make(
        status: Int, code: String, message: String, requestID: RequestID?, html: Bool, close: Bool,
        hstsLine: [UInt8], extraHeaders: String = "", extraJSON: String = "", impersonating: ImpersonationRefusalPage? = nil,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let id = requestID?.string
        let body: String
        let contentType: String
        if html {
            contentType = "text/html; charset=utf-8"
            body = page(status: status, message: message, requestID: id, impersonating: impersonating)
        } else {
            contentType = "application/json"
            var json = "{\"error\":\"\(jsonEscaped(code))\",\"message\":\"\(jsonEscaped(message))\""
            if let id { json += ",\"request_id\":\"\(id)\"" }
            body = json + extraJSON + "}\n"
        }
        var buffer = allocator.buffer(capacity: 256 + body.utf8.count)
        buffer.writeString("HTTP/1.1 \(status) \(reasonPhrase(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nCache-Control: no-store\r\n")
        if let id { buffer.writeString("X-Request-Id: \(id)\r\n") }
        buffer.writeBytes(hstsLine)
        buffer.writeString(extraHeaders)
        if close { buffer.writeString("Connection: close\r\n") }
        buffer.writeString("\r\n")
        buffer.writeString(body)
        return buffer
    }
}
