#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sk_test_pass, sk_test_fail;

int sk_test_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, sk_test_pass, sk_test_fail);
    return sk_test_fail ? 1 : 0;
}

const char *sk_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/skeptic-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

const char *sk_test_path(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", sk_test_tmpdir(), name);
    return buf[k];
}

void sk_test_write(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(bytes, 1, n, f);
    fclose(f);
}

double sk_rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / (mb > 1e-30 ? mb : 1e-30);
}
