/* OPENBLAS_CORETYPE: give OpenBLAS its AVX-512 kernels back.
 *
 * Some environments preset OPENBLAS_CORETYPE=Haswell. OpenBLAS reads the
 * variable once, when the shared library is loaded (before main), and then
 * uses its AVX2 kernels even on an AVX-512 CPU, about half the sgemm speed
 * (measured here: docs/perf.md). Unsetting the variable inside the process is
 * too late, so the skeptic program re-executes itself once without it when
 *   OPENBLAS_CORETYPE is "Haswell" (any case), the CPU has AVX-512F, and
 *   SKEPTIC_KEEP_CORETYPE is not set (set it to keep the preset).
 * The re-executed process no longer has the variable, so this cannot loop;
 * if the exec fails the program simply goes on with the preset kernels.
 * Library users are not affected: only this command-line program does it. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

void sk_cli_coretype_reexec(int argc, char **argv)
{
    (void)argc;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (!ct || strcasecmp(ct, "Haswell") != 0) return;
    if (getenv("SKEPTIC_KEEP_CORETYPE")) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) return;
#else
    return;
#endif
    unsetenv("OPENBLAS_CORETYPE");
    /* remembered for `skeptic --version`-style reports and for debugging */
    setenv("SKEPTIC_DROPPED_CORETYPE", "Haswell", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: restore the environment and carry on with AVX2 kernels */
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    unsetenv("SKEPTIC_DROPPED_CORETYPE");
}
