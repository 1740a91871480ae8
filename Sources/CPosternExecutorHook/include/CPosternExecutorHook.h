#ifndef CPOSTERN_EXECUTOR_HOOK_H
#define CPOSTERN_EXECUTOR_HOOK_H

#include <stdbool.h>

/// Sets the Swift concurrency runtime's global-enqueue hook (`swift_task_enqueueGlobal_hook`)
/// to `hook` if no hook is set yet, atomically; returns whether it did.
///
/// The hook is reached by the linker, not by `dlsym`: with `--static-swift-stdlib` the runtime
/// is linked into the executable with `--exclude-libs ALL`, so the symbol is not in the dynamic
/// symbol table and SwiftNIO's own installer (which looks it up with `dlsym`) cannot find it.
bool postern_install_enqueue_global_hook(void *hook);

#endif
