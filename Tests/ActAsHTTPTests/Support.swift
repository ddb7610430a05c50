import ActAsHTTP
import NIOCore

/// Parses a complete request the way the proxy does: head (fed whole), then framing.
func parseRequest(_ text: String, limits: HTTPLimits = HTTPLimits()) -> Result<RequestHead, HTTPParseError> {
    parseRequest(Array(text.utf8), limits: limits)
}

func parseRequest(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> Result<RequestHead, HTTPParseError> {
    var parser = HeadParser(kind: .request, limits: limits)
    var buffer = ByteBuffer(bytes: bytes)
    do {
        guard let length = try parser.parse(buffer) else { return .failure(HTTPParseError(status: 0, reason: "incomplete")) }
        return .success(try parser.finishRequest(buffer.readSlice(length: length)!))
    } catch {
        return .failure(error)
    }
}

/// Feeds `bytes` one byte at a time; the answer must not depend on how input is split.
func parseRequestBytewise(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> Result<RequestHead, HTTPParseError> {
    var parser = HeadParser(kind: .request, limits: limits)
    var buffer = ByteBuffer()
    do {
        for byte in bytes {
            buffer.writeInteger(byte)
            if let length = try parser.parse(buffer) {
                return .success(try parser.finishRequest(buffer.readSlice(length: length)!))
            }
        }
        return .failure(HTTPParseError(status: 0, reason: "incomplete"))
    } catch {
        return .failure(error)
    }
}

func parseResponse(_ text: String, method: HTTPMethod = .get) -> Result<ResponseHead, HTTPParseError> {
    var parser = HeadParser(kind: .response)
    var buffer = ByteBuffer(string: text)
    do {
        guard let length = try parser.parse(buffer) else { return .failure(HTTPParseError(status: 0, reason: "incomplete")) }
        return .success(try parser.finishResponse(buffer.readSlice(length: length)!, requestMethod: method))
    } catch {
        return .failure(error)
    }
}

struct DecodedBody: Equatable {
    var body: String
    var trailers: [String]
    var rest: String
}

/// Decodes a chunked body fed in pieces of `split` bytes.
func decodeChunked(_ text: String, split: Int = .max, limits: HTTPLimits = HTTPLimits()) -> Result<DecodedBody, HTTPParseError> {
    var decoder = ChunkedDecoder(limits: limits)
    let bytes = Array(text.utf8)
    var buffer = ByteBuffer()
    var body: [UInt8] = []
    var offset = 0
    do {
        while true {
            while let event = try decoder.next(&buffer) {
                switch event {
                case .data(let slice):
                    body += slice.readableBytesView
                case .end(let trailers):
                    let rest = String(buffer: buffer) + String(decoding: bytes[offset...], as: UTF8.self)
                    return .success(DecodedBody(
                        body: String(decoding: body, as: UTF8.self),
                        trailers: trailers?.pairs.map { "\($0.0): \($0.1)" } ?? [],
                        rest: rest))
                }
            }
            guard offset < bytes.count else { return .failure(HTTPParseError(status: 0, reason: "incomplete")) }
            let end = min(bytes.count, offset + max(1, min(split, bytes.count)))
            buffer.writeBytes(bytes[offset..<end])
            offset = end
        }
    } catch {
        return .failure(error)
    }
}

extension Result {
    var isFailure: Bool {
        if case .failure = self { return true }
        return false
    }
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
    var value: Success? {
        if case .success(let value) = self { return value }
        return nil
    }
}
