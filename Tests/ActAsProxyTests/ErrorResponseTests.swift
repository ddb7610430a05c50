@testable import ActAsProxy
import Testing

@Suite("Error response")
struct ErrorResponseTests {
    /// Every status the proxy answers by itself (its own errors and the parser's) has its
    /// RFC 9110 reason phrase, never the fallback "Error".
    @Test(arguments: [
        (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"), (405, "Method Not Allowed"),
        (408, "Request Timeout"), (409, "Conflict"), (413, "Content Too Large"), (414, "URI Too Long"), (417, "Expectation Failed"),
        (421, "Misdirected Request"), (429, "Too Many Requests"), (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"), (501, "Not Implemented"), (502, "Bad Gateway"), (503, "Service Unavailable"),
        (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"),
    ])
    func everyStatusTheProxySendsHasItsReasonPhrase(status: Int, phrase: String) {
        #expect(ErrorResponse.reasonPhrase(status) == phrase)
    }
}
