import ActAsHTTP
import NIOCore

/// Feeds the input to the codec twice — whole, and split at points derived from its first
/// byte — and crashes if the two disagree or if any invariant breaks. The parser must never
/// trap on any input, and its answer must not depend on how TCP cut the bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let step = Int(data[0] % 17) + 1
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    for kind in [HeadParser.Kind.request, .response] {
        let whole = run(bytes, kind: kind, step: bytes.count)
        let split = run(bytes, kind: kind, step: step)
        // Same verdict however TCP cut the bytes. (The status of a refusal may differ: a
        // partial line is refused by the first rule it breaks, a whole line by the first
        // rule in line order, e.g. 400 for a bare CR vs 501 for an unknown method.)
        switch (whole, split) {
        case (.rejected, .rejected): break
        default: precondition(whole == split, "whole \(whole) != split \(split) (step \(step))")
        }
    }
    return 0
}

enum Outcome: Equatable {
    case incomplete
    case rejected(Int)
    case message(headLength: Int, fields: Int, body: [UInt8], trailers: Int, rest: Int)
}

func run(_ bytes: [UInt8], kind: HeadParser.Kind, step: Int) -> Outcome {
    let limits = HTTPLimits(maxRequestLine: 2048, maxHeaderBytes: 4096, maxHeaders: 32, maxBody: 1 << 16)
    var parser = HeadParser(kind: kind, limits: limits)
    var buffer = ByteBuffer()
    var offset = 0
    do {
        var headLength: Int?
        while headLength == nil {
            guard offset < bytes.count else { return .incomplete }
            let end = min(bytes.count, offset + step)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            headLength = try parser.parse(buffer)
        }
        let length = headLength!
        precondition(length <= buffer.readableBytes)
        let head = buffer.readSlice(length: length)!
        let framing: BodyFraming
        let fields: Int
        if kind == .request {
            let request = try parser.finishRequest(head)
            precondition(request.targetRange.upperBound <= length)
            for field in request.block.fields { precondition(field.valueRange.upperBound <= length) }
            framing = request.framing
            fields = request.block.fields.count
        } else {
            let response = try parser.finishResponse(head, requestMethod: .get)
            precondition((100...599).contains(response.status))
            framing = response.framing
            fields = response.block.fields.count
        }
        guard case .chunked = framing else {
            return .message(headLength: length, fields: fields, body: [], trailers: 0, rest: bytes.count - length)
        }
        var decoder = ChunkedDecoder(limits: limits)
        var body: [UInt8] = []
        while true {
            while let event = try decoder.next(&buffer) {
                switch event {
                case .data(let slice):
                    precondition(slice.readableBytes > 0)
                    body += slice.readableBytesView
                case .end(let trailers):
                    precondition(body.count <= Int(limits.maxBody))
                    let rest = buffer.readableBytes + (bytes.count - offset)
                    return .message(headLength: length, fields: fields, body: body, trailers: trailers?.fields.count ?? 0, rest: rest)
                }
            }
            guard offset < bytes.count else { return .incomplete }
            let end = min(bytes.count, offset + step)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
        }
    } catch {
        return .rejected(error.status)
    }
}

// SwiftPM links an executable's entry point as `<Module>_main`; hand control to libFuzzer's
// driver from there (libFuzzer's own `main` is not linked when one exists).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzHTTP_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
