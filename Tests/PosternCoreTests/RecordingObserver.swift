import Synchronization

@testable import PosternCore
@testable import PosternEngine

/// A ``RequestObserver`` that keeps what it is told: the statuses of finished requests and the
/// count of abandoned application tasks.
final class RecordingObserver: RequestObserver {
    private let state = Mutex((statuses: [Int](), abandoned: 0))
    var statuses: [Int] { state.withLock { $0.statuses } }
    var abandonedTasks: Int { state.withLock { $0.abandoned } }
    func requestStarted(_ environ: Environ) {}
    func requestFinished(_ record: RequestRecord) { state.withLock { $0.statuses.append(record.status) } }
    func abandonedTasksChanged(by delta: Int) { state.withLock { $0.abandoned += delta } }
}
