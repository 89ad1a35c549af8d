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

/* ---- driving the skeptic binary (tests of the command line) ----
 * The binary is $SKEPTIC_BUILD_DIR/skeptic (ctest sets it), else ./skeptic;
 * commands run in sk_test_tmpdir() with SKEPTIC_NO_PROGRESS=1. */
struct cJSON;
extern char sk_cli_out[1 << 16], sk_cli_err[1 << 16]; /* stdout, stderr of the last run */
/* Path of the binary. */
const char *sk_cli_bin(void);
/* Run "skeptic ARGS" through the shell; returns the exit code (128 + signal if killed). */
int sk_cli_run(const char *args);
/* stdout of the last run if it is exactly one JSON object on one line; else NULL. */
struct cJSON *sk_cli_json(void);
/* A number / string member of a JSON object (-1e300 / "" if absent or of another type). */
double sk_json_num(const struct cJSON *o, const char *key);
const char *sk_json_str(const struct cJSON *o, const char *key);
/* Read up to cap-1 bytes of a file into buf, NUL terminated ("" if it cannot be read). */
void sk_test_slurp(const char *path, char *buf, size_t cap);
/* The bytes of tmpdir/name (malloc'ed, up to 1 MiB, length in *n); NULL if it cannot be read. */
unsigned char *sk_test_file_bytes(const char *name, size_t *n);

#endif
