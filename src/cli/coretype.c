/* The skeptic program's runtime environment, fixed once at start-up.
 *
 * 1. OPENBLAS_CORETYPE: give OpenBLAS its AVX-512 kernels back.
 * Some environments preset OPENBLAS_CORETYPE=Haswell. OpenBLAS reads the
 * variable once, when the shared library is loaded (before main), and then
 * uses its AVX2 kernels even on an AVX-512 CPU, about half the sgemm speed
 * (measured here: README.md, section Performance). Unsetting the variable inside the process is
 * too late, so the skeptic program re-executes itself once without it when
 *   OPENBLAS_CORETYPE is "Haswell" (any case), the CPU has AVX-512F, and
 *   SKEPTIC_KEEP_CORETYPE is not set (set it to keep the preset).
 *
 * 2. OMP_WAIT_POLICY: libgomp's default lets idle threads spin after every
 * parallel loop. On an idle machine that is fastest; on an oversubscribed one
 * (here: 4 other agents, load 13-20 on 2 cores) a spinning thread burns the
 * time slice its partner needs, and training ran 5-40x slower than with
 * OMP_WAIT_POLICY=PASSIVE (README.md, section Performance). libgomp also reads the variable only
 * at load time. So when neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set
 * (nor SKEPTIC_KEEP_WAIT) and the 1-minute load average exceeds the number of
 * cores, the program sets OMP_WAIT_POLICY=PASSIVE for itself. The wait policy
 * never changes results, only speed.
 *
 * Both need a re-exec, done once (the re-executed process no longer meets
 * either condition, so this cannot loop); if the exec fails the program goes
 * on as it is. Library users are not affected: only this program does it. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

static bool want_coretype_fix(void)
{
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (!ct || strcasecmp(ct, "Haswell") != 0 || getenv("SKEPTIC_KEEP_CORETYPE")) return false;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

/* An oversubscribed machine: more runnable work than cores (1-minute load). */
static bool want_passive_wait(void)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || getenv("SKEPTIC_KEEP_WAIT")) return false;
    double la[1];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    return getloadavg(la, 1) == 1 && ncpu > 0 && la[0] > (double)ncpu;
}

void sk_cli_coretype_reexec(int argc, char **argv)
{
    (void)argc;
    bool ct = want_coretype_fix(), wait = want_passive_wait();
    if (!ct && !wait) return;
    if (ct) {
        unsetenv("OPENBLAS_CORETYPE");
        setenv("SKEPTIC_DROPPED_CORETYPE", "Haswell", 1); /* for debugging: what was changed */
    }
    if (wait) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: restore the environment and carry on as we are */
    if (ct) {
        setenv("OPENBLAS_CORETYPE", "Haswell", 1);
        unsetenv("SKEPTIC_DROPPED_CORETYPE");
    }
    if (wait) unsetenv("OMP_WAIT_POLICY");
}
