/* fuzz/fuzz_util.h — what every fuzz target shares: the readers take paths,
 * so each input is written to a file in a private temporary directory
 * (removed at exit), and two-file readers get the input cut in two.
 *
 * Two-part inputs: the first 4 bytes (little-endian) are the length of part
 * A, clamped to what is left; part B is the rest. fuzz/make-corpus builds
 * its seeds that way. */
#ifndef SKEPTIC_FUZZ_UTIL_H
#define SKEPTIC_FUZZ_UTIL_H

#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skeptic/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir_buf[512];
static char fuzz_files[16][600];
static int fuzz_n_files;

static void fuzz_cleanup(void)
{
    for (int i = 0; i < fuzz_n_files; i++) unlink(fuzz_files[i]);
    if (fuzz_dir_buf[0]) rmdir(fuzz_dir_buf);
}

/* The private directory, made on first use (/dev/shm when there is one:
 * the inputs are rewritten at every execution). */
static inline const char *fuzz_dir(void)
{
    if (fuzz_dir_buf[0]) return fuzz_dir_buf;
    struct stat sb;
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/skeptic-fuzz-XXXXXX", base);
    if (!mkdtemp(fuzz_dir_buf)) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_cleanup);
    return fuzz_dir_buf;
}

/* The path fuzz_dir()/name (one slot per distinct name, removed at exit). */
static inline const char *fuzz_path(const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    for (int i = 0; i < fuzz_n_files; i++)
        if (!strcmp(fuzz_files[i], path)) return fuzz_files[i];
    if (fuzz_n_files == 16) abort();
    snprintf(fuzz_files[fuzz_n_files], sizeof fuzz_files[0], "%s", path);
    return fuzz_files[fuzz_n_files++];
}

/* Write bytes to fuzz_path(name) and return the path. A harness failure
 * aborts: it is not a finding. */
static inline const char *fuzz_write(const char *name, const void *data, size_t size)
{
    const char *path = fuzz_path(name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* NUL-terminated copy of the input (caller free()s). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

struct fuzz_parts {
    const uint8_t *a, *b;
    size_t na, nb;
};

/* Cut a two-part input; false if it is shorter than the length prefix. */
static inline int fuzz_split(const uint8_t *data, size_t size, struct fuzz_parts *p)
{
    if (size < 4) return 0;
    uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    size -= 4;
    data += 4;
    p->na = n < size ? n : size;
    p->a = data;
    p->b = data + p->na;
    p->nb = size - p->na;
    return 1;
}

#endif
