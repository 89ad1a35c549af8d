#define _GNU_SOURCE
#include "testutil.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int sk_test_pass, sk_test_fail;

static char tmp_dir[256];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int sk_test_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, sk_test_pass, sk_test_fail);
    /* the scratch directory goes when everything passed and stays, named, for a failure */
    if (tmp_dir[0] && sk_test_fail) printf("%s: files kept in %s\n", name, tmp_dir);
    else if (tmp_dir[0] && nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) perror(tmp_dir);
    return sk_test_fail ? 1 : 0;
}

const char *sk_test_tmpdir(void)
{
    char *dir = tmp_dir;
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof tmp_dir, "%s/skeptic-test-XXXXXX", base ? base : "/tmp");
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

char sk_cli_out[1 << 16], sk_cli_err[1 << 16];

const char *sk_cli_bin(void)
{
    static char bin[1200];
    if (!bin[0]) {
        /* absolute: commands run after a cd into the test's directory */
        const char *bd = getenv("SKEPTIC_BUILD_DIR");
        char rel[600], cwd[512];
        snprintf(rel, sizeof rel, "%s/skeptic", bd ? bd : ".");
        if (rel[0] != '/' && getcwd(cwd, sizeof cwd)) snprintf(bin, sizeof bin, "%s/%s", cwd, rel);
        else snprintf(bin, sizeof bin, "%s", rel);
    }
    return bin;
}

void sk_test_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

int sk_cli_run(const char *args)
{
    char cmd[4096];
    const char *dir = sk_test_tmpdir();
    snprintf(cmd, sizeof cmd, "cd '%s' && SKEPTIC_NO_PROGRESS=1 '%s' %s > out.txt 2> err.txt", dir, sk_cli_bin(), args);
    int st = system(cmd);
    sk_test_slurp(sk_test_path("out.txt"), sk_cli_out, sizeof sk_cli_out);
    sk_test_slurp(sk_test_path("err.txt"), sk_cli_err, sizeof sk_cli_err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct cJSON *sk_cli_json(void)
{
    size_t n = strlen(sk_cli_out);
    if (n == 0 || sk_cli_out[n - 1] != '\n' || memchr(sk_cli_out, '\n', n - 1)) return NULL;
    cJSON *o = cJSON_Parse(sk_cli_out);
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

double sk_json_num(const struct cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

const char *sk_json_str(const struct cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

unsigned char *sk_test_file_bytes(const char *name, size_t *n)
{
    FILE *f = fopen(sk_test_path(name), "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 20);
    *n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    return b;
}
