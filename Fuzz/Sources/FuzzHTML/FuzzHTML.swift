import ActAsHTTP
import FuzzSupport
import NIOCore

/// The banner injector: fed the document whole and in pieces (a step from the first byte), it
/// must give the same bytes and the same decision either way, and its output must be the input
/// with the insertion placed exactly once (or not at all) and nothing else changed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 1 else { return 0 }
    let step = Int(data[0] % 13) + 1
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let whole = inject(bytes, step: max(bytes.count, 1))
    let split = inject(bytes, step: step)
    precondition(whole.output == split.output && whole.inserted == split.inserted && whole.refusal == split.refusal,
                 "whole and split feeding differ (step \(step))")
    if whole.inserted {
        precondition(whole.refusal == nil)
        let insertion = Array(marker.utf8)
        precondition(whole.output.count == bytes.count + insertion.count, "bytes lost or added")
        precondition(findInsertion(whole.output, bytes, insertion), "the insertion is not placed once with the document intact")
    } else {
        precondition(whole.output == bytes, "a document without the insertion was changed")
    }
    return 0
}

private let marker = "<div id=\"actas-banner\">acting as</div>"

/// Whether `output` is `input` with `insertion` placed at some single position.
private func findInsertion(_ output: [UInt8], _ input: [UInt8], _ insertion: [UInt8]) -> Bool {
    guard output.count == input.count + insertion.count else { return false }
    for at in 0...input.count
    where output[..<at].elementsEqual(input[..<at]) && output[at..<(at + insertion.count)].elementsEqual(insertion)
        && output[(at + insertion.count)...].elementsEqual(input[at...]) {
        return true
    }
    return false
}

private func inject(_ bytes: [UInt8], step: Int) -> (output: [UInt8], inserted: Bool, refusal: HTMLBodyInjector.Refusal?) {
    var injector = HTMLBodyInjector(insertion: ByteBuffer(string: marker))
    var pieces: [ByteBuffer] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        injector.feed(ByteBuffer(bytes: bytes[offset..<end]), into: &pieces)
        offset = end
    }
    injector.finish(into: &pieces)
    var output: [UInt8] = []
    for piece in pieces { output += piece.readableBytesView }
    return (output, injector.inserted, injector.refusal)
}

@_cdecl("FuzzHTML_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzDriver(argc, argv, fuzz)
}
