/* Minimal test harness: CHECK records a failure and goes on; the program
 * exits nonzero if anything failed, and prints "N passed, N failed". */
#ifndef SK_TESTUTIL_H
#define SK_TESTUTIL_H

#include <stdio.h>

extern int sk_test_pass, sk_test_fail;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) {                                                                       \
            sk_test_pass++;                                                               \
        } else {                                                                          \
            sk_test_fail++;                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                        \
        }                                                                                 \
    } while (0)

/* Print the summary and return the exit code. */
int sk_test_finish(const char *name);
/* Path of a fresh temporary directory for this test (created). */
const char *sk_test_tmpdir(void);
/* "<tmpdir>/<name>" (one of 8 rotating static buffers). */
const char *sk_test_path(const char *name);
/* Write n bytes to path (exits the test program if it cannot). */
void sk_test_write(const char *path, const void *bytes, size_t n);
/* max |a-b| / max(max|b|, tiny) */
double sk_rel_err(const float *a, const float *b, size_t n);

#endif
