import ActAsStore
import NIOCore
import Synchronization
import Testing

@testable import ActAsProxy

/// One certificate sign-in at a time: who leads, who waits, and that every waiter hears once.
struct CertificateSessionsTests {
    final class Heard: Sendable {
        let outcomes = Mutex<[String]>([])
        func waiter(_ name: String) -> CertificateSessions.SignInWaiter {
            { result in
                let outcome: String
                switch result {
                case .success(.unknownUser): outcome = "unknown"
                case .success: outcome = "other"
                case .failure: outcome = "failure"
                }
                self.outcomes.withLock { $0.append("\(name):\(outcome)") }
            }
        }
        var all: [String] { outcomes.withLock { $0 } }
    }

    struct StoreDown: Error {}

    @Test func oneLeadsTheOthersWaitAndEachHearsOnce() throws {
        let sessions = CertificateSessions()
        let heard = Heard()
        let turn = sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("leader"))
        guard case .lead(let token) = turn else { Issue.record("the first must lead"); return }
        #expect(sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("b")) == .wait)
        #expect(sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("c")) == .wait)
        // Another user name from the same certificate (a reloaded rule) is another sign-in.
        #expect(sessions.startSignIn("sha", username: "bob", orWait: heard.waiter("x")) != .wait)
        sessions.finishSignIn("sha", username: "alice", token: token, .success(.unknownUser))
        #expect(heard.all == ["b:unknown", "c:unknown"])
        sessions.finishSignIn("sha", username: "alice", token: token, .success(.unknownUser))  // twice: nobody hears again
        #expect(heard.all.count == 2)
        // Finished: the next arrival leads a new sign-in.
        guard case .lead(let next) = sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("d")) else {
            Issue.record("after the finish the next one leads"); return
        }
        #expect(next != token)
    }

    @Test func aFailureReachesEveryWaiter() {
        let sessions = CertificateSessions()
        let heard = Heard()
        guard case .lead(let token) = sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("leader")) else { return }
        _ = sessions.startSignIn("sha", username: "alice", orWait: heard.waiter("b"))
        sessions.finishSignIn("sha", username: "alice", token: token, .failure(StoreDown()))
        #expect(heard.all == ["b:failure"])
    }

    @Test func aWaiterMayStartTheNextSignInFromItsCallback() {
        let sessions = CertificateSessions()
        let turns = Mutex<[CertificateSessions.SignInTurn]>([])
        guard case .lead(let token) = sessions.startSignIn("sha", username: "alice", orWait: { _ in }) else { return }
        _ = sessions.startSignIn("sha", username: "alice", orWait: { _ in
            let again = sessions.startSignIn("sha", username: "alice", orWait: { _ in })  // no deadlock: called outside the lock
            turns.withLock { $0.append(again) }
        })
        sessions.finishSignIn("sha", username: "alice", token: token, .success(.unknownUser))
        #expect(turns.withLock { $0.count } == 1)
        if case .lead = turns.withLock({ $0[0] }) {} else { Issue.record("the re-entering waiter should lead") }
    }

    @Test func aHungSignInIsTakenOverAfterThePatienceAndItsWaitersFollowTheNewOne() {
        let sessions = CertificateSessions()
        let heard = Heard()
        let start = NIODeadline.now()
        guard case .lead(let hung) = sessions.startSignIn("sha", username: "alice", now: start, orWait: heard.waiter("a")) else { return }
        #expect(sessions.startSignIn("sha", username: "alice", now: start + .seconds(9), orWait: heard.waiter("b")) == .wait)
        guard case .lead(let fresh) = sessions.startSignIn(
            "sha", username: "alice", now: start + CertificateSessions.patience, orWait: heard.waiter("c")) else {
            Issue.record("past the patience a new arrival leads"); return
        }
        sessions.finishSignIn("sha", username: "alice", token: hung, .failure(StoreDown()))  // the hung one, late: not its waiters any more
        #expect(heard.all.isEmpty)
        sessions.finishSignIn("sha", username: "alice", token: fresh, .success(.unknownUser))
        #expect(heard.all == ["b:unknown"])
    }
}
