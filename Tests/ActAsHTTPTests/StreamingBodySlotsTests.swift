import ActAsHTTP
import Testing

@Suite("Streaming upload slots (issue 21)")
struct StreamingBodySlotsTests {
    @Test func capacityIsHalfThePoolShareAndAtLeastOne() {
        #expect(StreamingBodySlots<Int>.capacity(poolShare: 256) == 128)
        #expect(StreamingBodySlots<Int>.capacity(poolShare: 4) == 2)
        #expect(StreamingBodySlots<Int>.capacity(poolShare: 3) == 1)
        #expect(StreamingBodySlots<Int>.capacity(poolShare: 1) == 1)
        #expect(StreamingBodySlots<Int>.capacity(poolShare: 0) == 1)
    }

    @Test func overTheCapExchangesWaitAndAreGrantedInOrder() {
        var slots = StreamingBodySlots<Int>(poolShare: 4)
        do { let result = slots.take(orQueue: 1); #expect(result) }
        do { let result = slots.take(orQueue: 2); #expect(result) }
        do { let result = slots.take(orQueue: 3); #expect(!result) }
        do { let result = slots.take(orQueue: 4); #expect(!result) }
        #expect(slots.held == 2 && slots.waiting == 2)
        do { let result = slots.release(isWaiting: { _ in true }); #expect(result == 3, "the slot passes to the first waiter") }
        #expect(slots.held == 2)
        do { let result = slots.release(isWaiting: { _ in true }); #expect(result == 4) }
        do { let result = slots.release(isWaiting: { _ in true }); #expect(result == nil) }
        do { let result = slots.release(isWaiting: { _ in true }); #expect(result == nil) }
        #expect(slots.held == 0 && slots.waiting == 0)
    }

    @Test func aSlotWhoseOnlyWaiterEndedIsFreeAgain() {
        var slots = StreamingBodySlots<Int>(poolShare: 2)
        do { let result = slots.take(orQueue: 1); #expect(result) }
        do { let result = slots.take(orQueue: 2); #expect(!result) }
        // A waiter is skipped when its exchange ended; the slot goes to the next live one.
        do { let result = slots.release(isWaiting: { $0 != 2 }); #expect(result == nil) }
        #expect(slots.held == 0)
        do { let result = slots.take(orQueue: 3); #expect(result) }
    }

    @Test func waitersThatEndedAreSkipped() {
        var slots = StreamingBodySlots<Int>(poolShare: 2)
        do { let result = slots.take(orQueue: 1); #expect(result) }
        for waiter in 2...5 { let result = slots.take(orQueue: waiter); #expect(!result) }
        do { let result = slots.release(isWaiting: { $0 >= 4 }); #expect(result == 4) }
        #expect(slots.held == 1 && slots.waiting == 1)
        slots.prune(isWaiting: { _ in false })
        #expect(slots.waiting == 0)
        do { let result = slots.release(isWaiting: { _ in true }); #expect(result == nil) }
        #expect(slots.held == 0)
    }

    @Test func extraReleasesNeverRaiseTheCap() {
        var slots = StreamingBodySlots<Int>(poolShare: 4)
        do { let result = slots.take(orQueue: 1); #expect(result) }
        _ = slots.release(isWaiting: { _ in true })
        _ = slots.release(isWaiting: { _ in true })  // a double release
        #expect(slots.held == 0)
        do { let result = slots.take(orQueue: 2); #expect(result) }
        do { let result = slots.take(orQueue: 3); #expect(result) }
        do { let result = slots.take(orQueue: 4); #expect(!result, "still two slots, not three") }
    }

    @Test func aLargerPoolShareGrantsWaiters() {
        var slots = StreamingBodySlots<Int>(poolShare: 2)
        do { let result = slots.take(orQueue: 1); #expect(result) }
        do { let result = slots.take(orQueue: 2); #expect(!result) }
        do { let result = slots.take(orQueue: 3); #expect(!result) }
        do { let result = slots.update(poolShare: 6, isWaiting: { _ in true }); #expect(result == [2, 3]) }
        #expect(slots.held == 3)
        do { let result = slots.update(poolShare: 2, isWaiting: { _ in true }); #expect(result == []) }
        do { let result = slots.take(orQueue: 4); #expect(!result, "over the smaller cap until enough are released") }
    }

    @Test func anExchangeGivesItsSlotBackExactlyOnce() {
        var state = StreamingSlotState.held
        do { let result = state.leave(); #expect(result) }
        do { let result = state.leave(); #expect(!result, "a second exit path releases nothing") }
        #expect(state == .none)
        state = .waiting
        do { let result = state.leave(); #expect(!result, "a waiter holds no slot") }
        #expect(state == .none)
    }
}
