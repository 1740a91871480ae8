#include "CPosternExecutorHook.h"

/// Defined by the Swift concurrency runtime (swift/Runtime/Concurrency.h): called, when set, for
/// every job enqueued on the global executor, with the job and the runtime's own enqueue.
extern void *swift_task_enqueueGlobal_hook;

bool postern_install_enqueue_global_hook(void *hook) {
    void *expected = 0;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
