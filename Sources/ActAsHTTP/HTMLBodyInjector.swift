import NIOCore

/// Inserts a fragment (the impersonation banner) once into a streamed `text/html` body,
/// where a browser would put it first in `<body>` (SPEC §7):
///
/// - right after the `>` of the first real `<body …>` start tag, as the HTML tokenizer
///   sees it: case-insensitive, quoted attribute values may hold `>`, and nothing inside
///   comments, DOCTYPE/`<?…>`/bogus comments, CDATA, `<script>` (with its `<!--` escapes),
///   `<style>`, `<title>`, `<textarea>`, `<noscript>` (scripting is on) and the other raw
///   text elements, `<template>` content, or attribute values counts;
/// - without a `<body>` tag, where the parser opens the body implicitly: before the first
///   non-whitespace text, start tag that does not belong in `<head>`, or `</body>`,
///   `</html>`, `</br>`; whitespace and comments stay before the insertion;
/// - a document that never gets there (empty, or only a head) gets it at the end, in
///   `finish`, unless it ends inside a construct (an unclosed comment, `<script>`,
///   `<title>`, tag…): there the fragment would become script, title text or an attribute,
///   so it is left out (`inserted` stays false);
/// - never: a `<frameset>` document (no body; a banner would replace the frames), or a
///   body that starts with a UTF-16 byte order mark (UTF-8 bytes would garble it). A UTF-8
///   byte order mark is passed through as it is.
///
/// Streaming: chunks may split anywhere. Output is slices of the input (no copy). The
/// only bytes held back are an unclassified `<tag` name before the body (at most 10 bytes:
/// `<` and up to 9 name bytes, since no head element name is longer) or a partial
/// byte order mark — so no byte limit is needed, and no tag, however long, can make it
/// buffer. An insertion after `<body …>` never waits: bytes before it go out as they come.
/// Once inserted (or disabled), chunks pass through untouched without scanning.
///
/// The body must be identity-encoded and in an ASCII-compatible charset (the caller
/// decodes or skips `Content-Encoding`, and skips UTF-16/32 `charset`s).
public struct HTMLBodyInjector: Sendable {
    /// What is inserted.
    public let insertion: ByteBuffer
    /// True once the insertion has been written to an output.
    public private(set) var inserted = false
    /// True once every further byte passes through unchanged (inserted, or decided never to).
    public private(set) var isPassthrough = false
    /// Why the document can never get the insertion, once that is known: a caller that must
    /// not show such a document without it (SPEC §7) refuses it instead.
    public private(set) var refusal: Refusal?

    /// Documents with no place for the insertion.
    public enum Refusal: String, Sendable, Equatable {
        /// A `<frameset>` document: it has no body, and a banner would replace the frames.
        case frameset
        /// A UTF-16 byte order mark: the browser decodes the page as UTF-16, where the
        /// insertion's UTF-8 bytes would be garbage.
        case utf16
    }

    private var scanner = HTMLBodyScanner()
    /// Bytes from earlier chunks not yet written: held back, or released but not yet flushed.
    private var pending: ByteBuffer?

    public init(insertion: ByteBuffer) {
        self.insertion = insertion
    }

    /// Feeds the next chunk of the body; appends what may be sent now to `output`
    /// (slices of `chunk`, possibly preceded by held-back bytes and the insertion).
    public mutating func feed(_ chunk: ByteBuffer, into output: inout [ByteBuffer]) {
        if isPassthrough {
            append(chunk, to: &output)
            return
        }
        let outcome = chunk.withUnsafeReadableBytes { scanner.scan($0) }
        switch outcome {
        case .needMore:
            guard scanner.holding else {
                flushPending(to: &output)
                append(chunk, to: &output)
                return
            }
            let start = scanner.holdStart
            if start < 0 {
                if pending == nil {
                    pending = chunk
                } else {
                    pending!.writeImmutableBuffer(chunk)
                }
            } else {
                flushPending(to: &output)
                append(chunk.getSlice(at: chunk.readerIndex, length: start)!, to: &output)
                pending = chunk.getSlice(at: chunk.readerIndex + start, length: chunk.readableBytes - start)
            }
        case .insert(let index):
            if index < 0 {
                output.append(insertion)
                flushPending(to: &output)
                append(chunk, to: &output)
            } else {
                flushPending(to: &output)
                append(chunk.getSlice(at: chunk.readerIndex, length: index)!, to: &output)
                output.append(insertion)
                append(chunk.getSlice(at: chunk.readerIndex + index, length: chunk.readableBytes - index)!, to: &output)
            }
            inserted = true
            isPassthrough = true
        case .disable(let why):
            refusal = why
            flushPending(to: &output)
            append(chunk, to: &output)
            isPassthrough = true
        }
    }

    /// The body has ended: appends what was held back, with the insertion if it has not
    /// happened and the document ended between tokens (before held-back bytes, which are
    /// an unfinished tag the parser drops). After this, `feed` passes bytes through.
    public mutating func finish(into output: inout [ByteBuffer]) {
        guard !isPassthrough else { return }
        isPassthrough = true
        if scanner.atTokenBoundary {
            output.append(insertion)
            inserted = true
        }
        flushPending(to: &output)
    }

    @inline(__always)
    private mutating func flushPending(to output: inout [ByteBuffer]) {
        if let bytes = pending {
            pending = nil
            append(bytes, to: &output)
        }
    }

    @inline(__always)
    private func append(_ buffer: ByteBuffer, to output: inout [ByteBuffer]) {
        if buffer.readableBytes > 0 { output.append(buffer) }
    }
}
