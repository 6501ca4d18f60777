import Synchronization

/// Ids known in memory, for tests of the task rules: the connections or pipelines that exist.
final class InMemoryDirectory<ID: Hashable & Sendable>: Sendable {
    private let ids: Mutex<Set<ID>>

    init(_ ids: Set<ID> = []) {
        self.ids = Mutex(ids)
    }

    func add(_ id: ID) { ids.withLock { _ = $0.insert(id) } }
    func remove(_ id: ID) { ids.withLock { _ = $0.remove(id) } }
    func contains(_ id: ID) -> Bool { ids.withLock { $0.contains(id) } }
}
