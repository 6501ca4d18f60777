import Foundation
import Logging
import Platform
import ServiceLifecycle
import Synchronization

/// The scheduling loop of one replica. It fires due tasks, publishes queued runs and expires runs that outlived
/// their timeout, then sleeps until the earliest thing due (not a fixed poll), or until a change made through any
/// replica's API wakes it (``ScheduleChanges``). `maxSleep` bounds how late a lost announcement leaves a change.
final class SchedulerEngine: Service, Sendable {
    /// Knobs of the loop.
    struct Settings: Sendable {
        /// Tasks claimed (and runs published) per transaction.
        var batchSize = 500
        /// A fire later than this is a misfire (`misfire_policy: skip` drops it).
        var misfireGrace: Duration = .seconds(60)
        /// Longest sleep between two passes.
        var maxSleep: Duration = .seconds(15)
        /// How often to look for runs past their timeout.
        var expiryInterval: Duration = .seconds(5)
    }

    let ledger: RunLedger
    let settings: Settings
    let logger: Logger
    private let signal = WakeSignal()
    private let opened = Latch()

    init(ledger: RunLedger, settings: Settings, logger: Logger) {
        self.ledger = ledger
        self.settings = settings
        self.logger = logger
    }

    /// Lets the loop start: the schema is migrated.
    func databaseReady() {
        opened.open()
    }

    /// Makes the loop look again now (a task was created, changed, resumed or run by hand).
    func wakeUp() {
        signal.signal()
    }

    func run() async throws {
        var lastExpiry = ContinuousClock.now - settings.expiryInterval
        await withGracefulShutdownHandler {
            await opened.wait()
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                var sleep = settings.maxSleep
                do {
                    try await pass()
                    if ContinuousClock.now - lastExpiry >= settings.expiryInterval {
                        lastExpiry = .now
                        try await expire()
                    }
                    if let due = try await ledger.nextDue() {
                        // At least a moment: what is due now may be locked by another replica's claim.
                        sleep = min(sleep, .milliseconds(max(20, Int64(due.timeIntervalSinceNow * 1000))))
                    }
                    sleep = min(sleep, settings.expiryInterval)
                } catch {
                    logger.error("scheduler pass failed; retrying", metadata: ["error": "\(error)"])
                    sleep = .seconds(1)
                }
                await signal.wait(upTo: sleep)
            }
        } onGracefulShutdown: {
            self.opened.open()
            self.signal.signal()
        }
    }

    /// Fires everything due and publishes everything queued whose time has come, a batch per transaction.
    /// Fires batch by batch (the first jobs leave while later tasks are still being claimed), then publishes what
    /// else is queued and due.
    func pass() async throws {
        while try await ledger.fireDue(now: Date(), limit: settings.batchSize, grace: settings.misfireGrace) == settings.batchSize {}
        while try await ledger.dispatch(now: Date(), limit: settings.batchSize) == settings.batchSize {}
    }

    private func expire() async throws {
        let expired = try await ledger.expire(now: Date())
        if expired > 0 {
            logger.notice("runs timed out", metadata: ["count": "\(expired)"])
            // Their retries may be due at once.
            try await pass()
        }
    }
}

/// Wakes one waiter early; a signal that comes while nobody waits is kept for the next wait.
final class WakeSignal: Sendable {
    private let state = Mutex<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns after `duration`, or as soon as ``signal()`` is called.
    func wait(upTo duration: Duration) async {
        guard duration > .zero else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Also when cancelled: the waiter below must never outlive its task.
                try? await Task.sleep(for: duration)
                self.signal()
            }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
            group.cancelAll()
        }
        // The timer signals even after a real signal woke the waiter: drop the flag it leaves. (A real signal
        // dropped with it is harmless: a pass always follows a wait.)
        state.withLock { $0.pending = false }
    }
}

/// Opens once; waiting on an open latch returns at once.
final class Latch: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the latch is open, or when the task is cancelled (which opens it: nothing waits for it then).
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let isOpen = state.withLock { state -> Bool in
                    if !state.open { state.waiters.append(continuation) }
                    return state.open
                }
                if isOpen { continuation.resume() }
            }
        } onCancel: {
            open()
        }
    }
}
