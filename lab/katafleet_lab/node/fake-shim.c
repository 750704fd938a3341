/* katafleet lab: a stand-in for containerd-shim-kata-v2.
 * Like the real shim it is a child subreaper, so the VMM (qemu -daemonize) and virtiofsd it starts
 * end up as its children. It runs $KATALAB_SHIM_HOOK (which starts virtiofsd and qemu) and then
 * reaps forever. Its own argv (-namespace ... -id <sandbox>) is what a real shim gets from containerd. */
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const char *hook = getenv("KATALAB_SHIM_HOOK");
    if (hook && fork() == 0) {
        execl("/bin/sh", "sh", "-c", hook, (char *)0);
        _exit(127);
    }
    for (;;) {
        if (wait(NULL) < 0)
            pause();
    }
}
