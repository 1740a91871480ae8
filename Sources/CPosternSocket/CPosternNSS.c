#define _GNU_SOURCE
#include "CPosternSocket.h"

#include <nss.h>
#include <pthread.h>
#include <sys/auxv.h>

/// A static executable has no program interpreter: the kernel gives it AT_BASE 0 (getauxval(3)).
/// Its glibc would still read /etc/nsswitch.conf and dlopen the host's NSS modules for a name
/// the built-in services do not find (`passwd: files systemd` makes it load
/// libnss_systemd.so.2, built for the host's shared glibc), and calling into that module crashes
/// the process. __nss_configure_lookup(3) (<nss.h>, glibc's interface for static programs)
/// replaces the configuration with the services linked in: files for accounts, files and DNS for
/// host names.
static void configure(void) {
    if (getauxval(AT_BASE) != 0) return;
    static const char *const accounts[] = {"passwd", "group", "shadow", "gshadow", "initgroups"};
    for (unsigned i = 0; i < sizeof accounts / sizeof accounts[0]; i++) {
        __nss_configure_lookup(accounts[i], "files");
    }
    __nss_configure_lookup("hosts", "files dns");
    __nss_configure_lookup("services", "files");
}

void postern_nss_static_services(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, configure);
}
