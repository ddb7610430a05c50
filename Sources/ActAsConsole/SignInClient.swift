import ActAsConfig
import Foundation

/// The client address sign-in throttling counts (see `LoginRateLimiter`).
public enum SignInClient {
    /// The TCP peer, or, when the peer is one of `listen.trusted_proxies`, the nearest
    /// `X-Forwarded-For` entry that is not a trusted proxy: entries further left were written
    /// by whoever connected to the first proxy and can be forged, so they are never used.
    /// Behind a proxy every client would otherwise share the proxy's address, and one
    /// attacker's failures would slow everyone. An entry that is not an address stops the walk
    /// at the last trusted hop (its address is used: no one gains a bucket by sending junk).
    public static func address(peer: String, forwardedFor: [String], trusted: [CIDR]) -> String {
        guard !trusted.isEmpty, let peerBytes = IPAddressText.parse(peer), trusted.contains(where: { $0.contains(peerBytes) }) else {
            return peer
        }
        var nearest = peer
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let bytes = IPAddressText.parse(hop) else { return nearest }
            let text = format(bytes)
            if !trusted.contains(where: { $0.contains(bytes) }) { return text }
            nearest = text
        }
        return nearest
    }

    /// IPv4 dotted, IPv6 as eight lower-case groups (one spelling per address).
    static func format(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2)
            .map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
