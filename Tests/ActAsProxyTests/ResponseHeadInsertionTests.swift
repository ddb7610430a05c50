@testable import ActAsProxy
import NIOCore
import Testing

/// The mTLS sign-in's `Set-Cookie` goes into the first final response head, after its status line.
struct ResponseHeadInsertionTests {
    let line = "Set-Cookie: s=1\r\n"

    func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    func text(_ outcome: ResponseHeadInsertion.Outcome) -> String? {
        guard case .inserted(let buffer) = outcome else { return nil }
        return String(buffer: buffer)
    }

    @Test func afterTheStatusLineOfAFinalResponse() {
        let out = ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
        #expect(text(out) == "HTTP/1.1 200 OK\r\nSet-Cookie: s=1\r\nContent-Length: 2\r\n\r\nhi")
    }

    @Test func anInterimHeadAloneMeansNotYet() {
        #expect(ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.1 100 Continue\r\n\r\n")) == .notYet)
    }

    @Test func interimHeadsBeforeTheFinalOneInTheSameBufferAreSkipped() {
        let out = ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 403 Forbidden\r\n\r\n"))
        #expect(text(out) == "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 403 Forbidden\r\nSet-Cookie: s=1\r\n\r\n")
    }

    @Test func switchingProtocolsOrNotAHeadNeverGetsIt() {
        #expect(ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.1 101 Switching Protocols\r\n\r\n")) == .never)
        #expect(ResponseHeadInsertion.insert(line, into: buffer("body bytes")) == .never)
        #expect(ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.1 2x0 OK\r\n\r\n")) == .never)
        #expect(ResponseHeadInsertion.insert(line, into: buffer("")) == .never)
    }

    @Test func http10StatusLinesToo() {
        #expect(text(ResponseHeadInsertion.insert(line, into: buffer("HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n")))
                == "HTTP/1.0 302 Found\r\nSet-Cookie: s=1\r\nLocation: /\r\n\r\n")
    }
}
