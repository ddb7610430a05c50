import Foundation
import Testing
@testable import ActAsStore

#if canImport(Glibc)
import Glibc
#endif

/// SPEC §10.1: only a refused connection shows an instance is not running; a silent one may be
/// a live instance still enforcing the old state.
@Suite("Telling instances about a change")
struct InstanceNotifierTests {
    @Test func aClosedAdminPortIsNotRunning() async throws {
        // Bound but not listening: the kernel refuses connections to it, and while it stays bound
        // no other test can take the port and no connection can be its own peer (a closed port in
        // the ephemeral range once "answered" a full run that way: no refusal within 15 s).
        let socket = try LoopbackSocket(listening: false)
        defer { socket.close() }
        // A refused connection answers at once; the long bound only covers a loaded test machine.
        let outcome = await InstanceNotifier.call(record(port: socket.port), change: 1, timeout: .seconds(15))
        guard case .notRunning = outcome else {
            Issue.record("expected notRunning, got \(outcome)")
            return
        }
    }

    @Test func aListenerThatNeverAnswersFails() async throws {
        // The kernel completes the handshake from the backlog; nobody reads or answers.
        let socket = try LoopbackSocket(listening: true)
        defer { socket.close() }
        let outcome = await InstanceNotifier.call(record(port: socket.port), change: 1, timeout: .milliseconds(200))
        #expect(outcome == .failed("no confirmation within 0.2 seconds"))
    }

    @Test func aRowWithoutAdminAddressFails() async {
        let outcome = await InstanceNotifier.call(
            InstanceRecord(id: "a", adminAddress: "", startedAt: t0, lastSeen: t0), change: 1, timeout: .seconds(1))
        guard case .failed = outcome else {
            Issue.record("expected failed, got \(outcome)")
            return
        }
    }

    @Test func unrelatedErrorsAreNotRefusals() {
        struct Other: Error {}
        #expect(!InstanceNotifier.isConnectionRefused(Other()))
        #expect(!InstanceNotifier.isConnectionRefused(InstanceNotifier.CallError.timedOut(.seconds(1))))
    }

    private func record(port: Int) -> InstanceRecord {
        InstanceRecord(id: "test:\(port)", adminAddress: "127.0.0.1:\(port)", startedAt: t0, lastSeen: t0)
    }
}

/// A TCP socket bound to an ephemeral loopback port, listening or not.
private struct LoopbackSocket {
    let descriptor: Int32
    let port: Int

    struct Failure: Error { let call: String }

    init(listening: Bool) throws {
        descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(call: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = descriptor
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                Glibc.bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard bound else { throw Failure(call: "bind") }
        if listening, Glibc.listen(fd, 8) != 0 { throw Failure(call: "listen") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(descriptor) }
}
