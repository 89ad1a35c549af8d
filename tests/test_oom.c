/* Out of memory: the n-th allocation fails (sk_alloc_fail_after, or
 * SKEPTIC_FAIL_ALLOC=N for the skeptic command) for a sweep of n.
 *
 * The readers, in process: each either succeeds or returns NULL with
 * SK_ENOMEM's message; the sanitizers (and LeakSanitizer at exit) see every
 * error path. The commands train, eval, attack and certify on tiny data:
 * each run exits 0 (n beyond its allocations) or fails with a message
 * saying out of memory, without a sanitizer report, and leaves its output
 * file either as it was before or (exit 0) whole. n runs 1..8, then grows
 * by half each time until two runs in a row succeed, so that every phase
 * of a command (parsing, loading, the work, writing) takes a failure
 * while the test stays short under the sanitizers. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/bayes.h"
#include "skeptic/data.h"
#include "skeptic/model.h"
#include "testutil.h"

static bool sanitizer_report(const char *err)
{
    return strstr(err, "Sanitizer") || strstr(err, "runtime error:") || strstr(err, "internal error");
}

/* Entries of the test directory other than the harness's out.txt/err.txt. */
static int n_entries(void)
{
    DIR *d = opendir(sk_test_tmpdir());
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "out.txt") && strcmp(e->d_name, "err.txt")) n++;
    if (d) closedir(d);
    return n;
}

static long next_n(long n) { return n < 8 ? n + 1 : n + n / 2; }

/* ---- in process: the readers ---- */

typedef bool (*reader_fn)(const char *path);

static bool read_model(const char *path)
{
    char *meta = NULL;
    struct sk_model *m = sk_model_load(path, NULL, &meta);
    sk_free(meta);
    sk_model_free(m);
    return m != NULL;
}

static bool read_posterior(const char *path)
{
    struct sk_posterior *p = sk_bayes_load(path);
    sk_bayes_free(p);
    return p != NULL;
}

static bool read_csv(const char *path)
{
    struct sk_dataset *d = sk_data_load_csv(path, NULL, 0);
    sk_dataset_free(d);
    return d != NULL;
}

static void sweep_reader(const char *what, reader_fn read, const char *path)
{
    CHECK(read(path), "%s: %s reads without an injected failure: %s", what, path, sk_last_error());
    long n = 1, runs = 0;
    for (; runs < 60; n = next_n(n), runs++) {
        sk_error_clear();
        sk_alloc_fail_after(n);
        bool ok = read(path), taken = sk_alloc_fail_taken();
        sk_alloc_fail_after(0);
        if (ok && !taken) break; /* past the reader's last allocation */
        CHECK(!ok, "%s, allocation %ld fails: the reader absorbed the failure and succeeded", what, n);
        if (!ok)
            CHECK(strstr(sk_last_error(), "out of memory"), "%s, allocation %ld fails: message '%s'", what, n,
                  sk_last_error());
    }
    CHECK(runs < 60, "%s: still failing at allocation %ld", what, n);
    printf("%-10s %ld runs, past the last allocation at %ld\n", what, runs, n);
}

/* ---- the commands ---- */

struct command {
    const char *name, *args;
    const char *out;     /* output file to watch (NULL: none) */
    bool stable_stdout;  /* stdout is the same run to run, but for its "time" line */
};

/* The bytes of an output file (NULL if absent), malloc'ed. */
static unsigned char *output_bytes(const char *name, size_t *n)
{
    *n = 0;
    return name ? sk_test_file_bytes(name, n) : NULL;
}

/* Two outputs agree line by line, but for lines that start with "time" (wall-clock, differs run to run). */
static bool same_output(const char *a, const char *b)
{
    for (;;) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        bool timing = !strncmp(a, "time", 4) && !strncmp(b, "time", 4);
        if (!timing && (la != lb || memcmp(a, b, la))) return false;
        if (!ea || !eb) return !ea && !eb;
        a = ea + 1;
        b = eb + 1;
    }
}

static void sweep_command(const struct command *c)
{
    static const char old[] = "the previous contents of an output file";
    char out[1024] = "";
    if (c->out) snprintf(out, sizeof out, "%s", sk_test_path(c->out));
    /* the reference: a run without an injected failure */
    if (c->out) sk_test_write(out, old, sizeof old);
    CHECK(sk_cli_run(c->args) == 0, "%s: fails without an injected failure:\n%s", c->name, sk_cli_err);
    static char ref_stdout[sizeof sk_cli_out];
    memcpy(ref_stdout, sk_cli_out, sizeof ref_stdout);
    size_t ref_len;
    unsigned char *ref = output_bytes(c->out, &ref_len);
    long n = 1, runs = 0, absorbed = 0;
    for (; runs < 60; n = next_n(n), runs++) {
        if (c->out) sk_test_write(out, old, sizeof old);
        int entries = n_entries();
        char val[32];
        snprintf(val, sizeof val, "%ld", n);
        setenv("SKEPTIC_FAIL_ALLOC", val, 1);
        int rc = sk_cli_run(c->args);
        unsetenv("SKEPTIC_FAIL_ALLOC");
        bool taken = strstr(sk_cli_err, "injected allocation failure") != NULL;
        CHECK(!sanitizer_report(sk_cli_err), "%s, allocation %ld fails: sanitizer report:\n%s", c->name, n, sk_cli_err);
        CHECK(rc == 0 || rc == 1 || rc == 2, "%s, allocation %ld fails: exit %d\n%s", c->name, n, rc, sk_cli_err);
        CHECK(rc == 0 || taken, "%s, allocation %ld: exit %d before the failure was taken\n%s", c->name, n, rc,
              sk_cli_err);
        if (rc != 0)
            CHECK(strstr(sk_cli_err, "out of memory"),
                  "%s, allocation %ld fails: exit %d without saying out of memory:\n%s", c->name, n, rc, sk_cli_err);
        size_t len;
        unsigned char *b = output_bytes(c->out, &len);
        if (c->out && rc != 0)
            CHECK(b && len == sizeof old && !memcmp(b, old, len),
                  "%s, allocation %ld fails: %s is no longer the old file (%zu bytes)", c->name, n, c->out, len);
        if (rc == 0 && taken) {
            /* a probe took the failure for "absent" and the run went on: its
             * results must be those of a run without a failure */
            absorbed++;
            CHECK(!c->out || (b && ref && len == ref_len && !memcmp(b, ref, len)),
                  "%s, allocation %ld fails, exit 0: %s differs from a run without a failure", c->name, n, c->out);
            CHECK(!c->stable_stdout || same_output(sk_cli_out, ref_stdout),
                  "%s, allocation %ld fails, exit 0: the output differs from a run without a failure:\n%s", c->name,
                  n, sk_cli_out);
        }
        free(b);
        CHECK(n_entries() == entries, "%s, allocation %ld fails: the directory gained or lost files (a temporary left?)",
              c->name, n);
        if (rc == 0 && !taken) break; /* past the command's last allocation */
    }
    free(ref);
    CHECK(runs < 60, "%s: still failing at allocation %ld", c->name, n);
    printf("%-10s %ld runs, %ld failures absorbed, past the last allocation at %ld\n", c->name, runs, absorbed, n);
}

int main(void)
{
    CHECK(sk_cli_run("train --data moons:n=40 --arch mlp:2-8-2:relu --epochs 2 --threads 1 --out base.safetensors") == 0,
          "base model: %s", sk_cli_err);
    CHECK(sk_cli_run("train --method ensemble --members 2 --data moons:n=40 --arch mlp:2-4-2:relu --epochs 1 --threads 1 "
                     "--out ens.safetensors") == 0,
          "base posterior: %s", sk_cli_err);
    static const char csv[] = "a,b,label\n0.5,1,0\n1.5,2,1\n2.5,3,1\n";
    sk_test_write(sk_test_path("t.csv"), csv, sizeof csv - 1);

    sweep_reader("model", read_model, sk_test_path("base.safetensors"));
    sweep_reader("posterior", read_posterior, sk_test_path("ens.safetensors"));
    sweep_reader("csv", read_csv, sk_test_path("t.csv"));

    static const struct command cmds[] = {
        { "train", "train --data moons:n=40 --arch mlp:2-8-2:relu --epochs 2 --batch 16 --threads 1 --out out.safetensors",
          "out.safetensors", false },
        { "eval", "eval --model base.safetensors --data moons:n=40 --n 20 --threads 1", NULL, true },
        { "attack", "attack --model base.safetensors --data moons:n=40 --n 10 --attack pgd --eps 0.1 --threads 1 "
                    "--save-adv adv.npy",
          "adv.npy", false },
        { "certify", "certify --model base.safetensors --data moons:n=40 --n 10 --eps 0.05 --method crown --threads 1",
          NULL, true },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) sweep_command(&cmds[i]);
    return sk_test_finish("test_oom");
}
