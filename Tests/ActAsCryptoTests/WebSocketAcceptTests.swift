import ActAsCrypto
import Testing

@Suite struct WebSocketAcceptTests {
    @Test func rfc6455Example() {
        #expect(WebSocketAccept.value(forKey: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(WebSocketAccept.matches(accept: " s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", key: "dGhlIHNhbXBsZSBub25jZQ=="))
    }

    @Test func anythingElseDoesNotMatch() {
        #expect(!WebSocketAccept.matches(accept: nil, key: "dGhlIHNhbXBsZSBub25jZQ=="))
        #expect(!WebSocketAccept.matches(accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", key: nil))
        #expect(!WebSocketAccept.matches(accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", key: "AAAAAAAAAAAAAAAAAAAAAA=="))
        #expect(!WebSocketAccept.matches(accept: "S3PPLMBITXAQ9KYGZZHZRBK+XOO=", key: "dGhlIHNhbXBsZSBub25jZQ=="))
        #expect(!WebSocketAccept.matches(accept: "", key: ""))
    }
}
