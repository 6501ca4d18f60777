import Platform
import Testing

@Suite struct StreamWorkerPartsTests {
    @Test func acknowledgementsComeInBatchesAndDrainAfterFinish() async {
        let acknowledgements = Acknowledgements()
        acknowledgements.add("1-0")
        acknowledgements.add("2-0")
        #expect(await acknowledgements.next() == ["1-0", "2-0"])
        // A waiting reader is woken by the next id.
        async let next = acknowledgements.next()
        acknowledgements.add("3-0")
        #expect(await next == ["3-0"])
        acknowledgements.add("4-0")
        acknowledgements.finish()
        #expect(await acknowledgements.next() == ["4-0"], "what came before finish is still handed out")
        #expect(await acknowledgements.next() == nil)
    }

    @Test func aFreedSlotWakesTheReader() async {
        let slots = JobSlots(count: 2)
        slots.take()
        slots.take()
        #expect(slots.busy == 2)
        async let woken: Void = slots.waitForFree()
        slots.free(1)
        await woken
        #expect(slots.free == 1)
    }

    @Test func waitingForAllSlotsGivesUpAtItsLimit() async {
        let slots = JobSlots(count: 3)
        slots.take()
        let start = ContinuousClock.now
        #expect(await !slots.waitUntilAllFree(for: .milliseconds(100)))
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        slots.free(1)
        #expect(await slots.waitUntilAllFree(for: .milliseconds(100)))
    }
}
