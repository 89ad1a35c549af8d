/* The command line, driven as a user would: exit codes (0 / 1 runtime / 2
 * usage), --help with an example for every command, --json printing exactly
 * one object with the documented keys, --log JSON lines, failed runs leaving
 * existing output files untouched, and a training run killed with SIGKILL
 * mid-epoch then continued with --resume ending bitwise identical to an
 * uninterrupted run. Runs $SKEPTIC_BUILD_DIR/skeptic. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static char bin[600], dir[600];
static char out_buf[1 << 16], err_buf[1 << 16];

static void slurp_into(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Run "skeptic ARGS" through the shell; stdout/stderr captured. */
static int run(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && SKEPTIC_NO_PROGRESS=1 '%s' %s > out.txt 2> err.txt", dir, bin, args);
    int st = system(cmd);
    char p[700];
    snprintf(p, sizeof p, "%s/out.txt", dir);
    slurp_into(p, out_buf, sizeof out_buf);
    snprintf(p, sizeof p, "%s/err.txt", dir);
    slurp_into(p, err_buf, sizeof err_buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* stdout must be exactly one JSON object (one line). */
static cJSON *json_out(void)
{
    size_t n = strlen(out_buf);
    if (n == 0 || out_buf[n - 1] != '\n' || memchr(out_buf, '\n', n - 1)) return NULL;
    cJSON *o = cJSON_Parse(out_buf);
    if (o && !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static double num(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1e300;
}

static const char *str(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_usage(void)
{
    CHECK(run("--version") == 0 && !strncmp(out_buf, "skeptic ", 8), "--version: %s", out_buf);
    CHECK(run("") == 2, "no command is a usage error");
    CHECK(run("frobnicate") == 2 && strstr(err_buf, "unknown command 'frobnicate'"), "unknown command");
    CHECK(run("--help") == 0 && strstr(out_buf, "train") && strstr(out_buf, "eval"), "top-level help");
    const char *cmds[] = { "train", "eval", "info", "data" };
    for (int i = 0; i < 4; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK(run(a) == 0 && strstr(out_buf, "example:\n  skeptic ") && strstr(out_buf, "usage: skeptic"),
              "%s --help shows usage and an example", cmds[i]);
    }
    CHECK(run("train --arch mlp:2-8-2 --out m.st") == 2 && strstr(err_buf, "--data"), "train without --data: %s",
          err_buf);
    CHECK(run("train --data moons --arch mlp:2-8-2 --out m.st --epochs ten") == 2 &&
              strstr(err_buf, "--epochs expects an integer, got 'ten'"),
          "bad integer: %s", err_buf);
    CHECK(run("train --data moons --arch mlp:2-8-2 --out m.st --frobs 3") == 2 && strstr(err_buf, "--frobs"),
          "unknown option");
    CHECK(run("train --data moons --arch mlp:2-8-2 --out m.st --optimizer adagrad") == 2 && strstr(err_buf, "adagrad"),
          "unknown optimizer");
    CHECK(run("train --data moons --arch mlp:2-x-2 --out m.st") == 2 && strstr(err_buf, "column"), "bad spec: %s",
          err_buf);
    CHECK(run("train --data moons --arch mlp:2-8-2 --out m.st --early-stop 3") == 2 && strstr(err_buf, "--val-split"),
          "early stop without validation");
    CHECK(run("eval --model nope.safetensors --data moons") == 1 && strstr(err_buf, "nope.safetensors"),
          "missing model is a runtime failure naming the file: %s", err_buf);
    CHECK(run("eval --data moons") == 2, "eval without --model");
    CHECK(run("info") == 2, "info without a file");
    CHECK(run("data no-such-thing") == 1 && strstr(err_buf, "no-such-thing"), "unknown data: %s", err_buf);
}

static void test_train_eval_json(void)
{
    int rc = run("train --data moons:n=400,noise=0.1 --arch mlp:2-32-32-2:relu --epochs 30 --batch 32 --lr 0.01 "
                 "--seed 2 --val-split 0.1 --out moons.safetensors --log moons.jsonl --json");
    cJSON *o = json_out();
    CHECK(rc == 0 && o, "train --json prints one object: rc %d, '%s' '%s'", rc, out_buf, err_buf);
    double tacc = num(o, "test_accuracy");
    CHECK(tacc > 0.95 && tacc <= 1, "moons test accuracy %g", tacc);
    CHECK(num(o, "train_rows") == 360 && num(o, "val_rows") == 40 && num(o, "test_rows") == 400, "row counts");
    CHECK(strlen(str(o, "weights_fnv1a64")) == 16, "train reports the weights hash");
    cJSON_Delete(o);
    /* the log: one JSON object per epoch */
    char p[700], logb[1 << 15];
    snprintf(p, sizeof p, "%s/moons.jsonl", dir);
    slurp_into(p, logb, sizeof logb);
    int lines = 0, good = 0;
    for (char *l = strtok(logb, "\n"); l; l = strtok(NULL, "\n")) {
        cJSON *e = cJSON_Parse(l);
        lines++;
        good += e && num(e, "epoch") == lines && num(e, "train_loss") > 0 && cJSON_GetObjectItem(e, "val_acc");
        cJSON_Delete(e);
    }
    CHECK(lines == 30 && good == 30, "--log has 30 epoch lines (%d, %d good)", lines, good);

    rc = run("eval --model moons.safetensors --data moons:n=400,noise=0.1 --json");
    o = json_out();
    CHECK(rc == 0 && o, "eval --json: %s %s", out_buf, err_buf);
    CHECK(num(o, "accuracy") == tacc && num(o, "loss") > 0 && num(o, "n") == 400, "eval accuracy %g equals train's test accuracy %g",
          num(o, "accuracy"), tacc);
    cJSON *cm = cJSON_GetObjectItem(o, "confusion"), *pc = cJSON_GetObjectItem(o, "per_class_accuracy");
    CHECK(cJSON_GetArraySize(cm) == 2 && cJSON_GetArraySize(pc) == 2, "confusion matrix and per-class accuracy");
    double diag = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 0), 0)->valuedouble +
                  cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 1), 1)->valuedouble;
    CHECK(diag / 400 == tacc, "confusion diagonal gives the accuracy");
    cJSON_Delete(o);
    rc = run("eval --model moons.safetensors --data moons:n=400,noise=0.1");
    CHECK(rc == 0 && strstr(out_buf, "accuracy") && strstr(out_buf, "confusion matrix"), "eval text output");
    rc = run("info moons.safetensors --json");
    o = json_out();
    CHECK(rc == 0 && o && num(o, "params") == 2 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2 &&
              !strcmp(str(o, "arch"), "mlp:2-32-32-2:relu") && cJSON_GetObjectItem(o, "metadata"),
          "info --json: %s", out_buf);
    cJSON_Delete(o);
    rc = run("data moons:n=100 --json");
    o = json_out();
    cJSON *tr = o ? cJSON_GetObjectItem(cJSON_GetObjectItem(o, "splits"), "train") : NULL;
    CHECK(rc == 0 && tr && num(tr, "n") == 100 && num(tr, "n_classes") == 2, "data --json: %s", out_buf);
    cJSON_Delete(o);
    /* a model for other data is refused with a clear message */
    rc = run("eval --model moons.safetensors --data blobs:dim=3");
    CHECK(rc == 1 && strstr(err_buf, "expects 2"), "data that does not fit the model: %s", err_buf);
}

static unsigned char *file_bytes(const char *name, size_t *n)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 20);
    *n = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void test_failures_leave_outputs(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "a,b,y\n1,2,0\n3,nan,1\n");
    fclose(f);
    size_t n0, n1;
    unsigned char *before = file_bytes("moons.safetensors", &n0);
    int rc = run("train --data bad.csv --arch mlp:2-4-2 --out moons.safetensors");
    CHECK(rc == 1 && strstr(err_buf, "bad.csv:3: column 2"), "bad CSV: rc %d '%s'", rc, err_buf);
    rc = run("train --data moons --arch mlp:3-4-2 --out moons.safetensors");
    CHECK(rc == 1 && strstr(err_buf, "takes 3 inputs"), "arch that does not fit the data: %s", err_buf);
    /* one bad file per loader through the command line: exit 1, file named */
    struct {
        const char *name, *bytes, *args, *want;
        size_t n;
    } bad[] = {
        { "trunc_x.npy", "", "", "truncated", 0 },
        { "magic-images-idx3-ubyte", "\x01\x02\x08\x03\x00\x00\x00\x01", "--labels moons.jsonl", "bad magic", 8 },
        { "garbage.csv", "\x7f\x45\x4c\x46,\x02,\x01\n\x01,\x02\n", "", "garbage.csv:", 0 },
    };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, bad[i].name);
        f = fopen(p, "wb");
        if (i == 0) { /* a valid .npy header promising 2x2 floats, then 2 bytes of data */
            const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
            unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)strlen(h), 0 };
            fwrite(pre, 1, 10, f);
            fwrite(h, 1, strlen(h), f);
            fwrite("\0\0", 1, 2, f);
        } else {
            fwrite(bad[i].bytes, 1, bad[i].n ? bad[i].n : strlen(bad[i].bytes), f);
        }
        fclose(f);
        if (i == 0) { /* the companion labels file */
            snprintf(p, sizeof p, "%s/trunc_y.npy", dir);
            f = fopen(p, "wb");
            fwrite("x", 1, 1, f);
            fclose(f);
        }
        char a[512];
        snprintf(a, sizeof a, "train --data %s %s --arch mlp:2-4-2 --out moons.safetensors", bad[i].name, bad[i].args);
        rc = run(a);
        CHECK(rc == 1 && strstr(err_buf, bad[i].name) && strstr(err_buf, bad[i].want), "bad %s: rc %d '%s'", bad[i].name,
              rc, err_buf);
    }
    unsigned char *after = file_bytes("moons.safetensors", &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0), "failed runs leave the existing model untouched");
    free(before);
    free(after);
    /* a corrupt model file: runtime failure naming it */
    snprintf(p, sizeof p, "%s/corrupt.safetensors", dir);
    f = fopen(p, "w");
    fprintf(f, "this is not a model");
    fclose(f);
    rc = run("eval --model corrupt.safetensors --data moons");
    CHECK(rc == 1 && strstr(err_buf, "corrupt.safetensors") && strstr(err_buf, "header length"), "corrupt model: %s",
          err_buf);
}

static void test_kill_resume(void)
{
    const char *args = "train --data blobs:n=12000,k=4,dim=20 --arch mlp:20-96-96-4:relu:dropout0.2 --epochs 3 "
                       "--batch 16 --optimizer adam --schedule cosine --val-split 0.1 --seed 5 --threads 1 --quiet";
    char a[1024];
    snprintf(a, sizeof a, "%s --out full.safetensors --json", args);
    int rc = run(a);
    cJSON *o = json_out();
    char full_hash[32] = "";
    snprintf(full_hash, sizeof full_hash, "%s", o ? str(o, "weights_fnv1a64") : "");
    CHECK(rc == 0 && strlen(full_hash) == 16, "uninterrupted run: %s", err_buf);
    cJSON_Delete(o);

    /* kill -9 while it trains, after a few checkpoints have been written */
    char ck[700], outp[700];
    snprintf(ck, sizeof ck, "%s/run.ckpt", dir);
    snprintf(outp, sizeof outp, "%s/resumed.safetensors", dir);
    unlink(ck);
    unlink(outp);
    bool killed_mid = false;
    int ck_batch = -1;
    for (int attempt = 0; attempt < 4 && !killed_mid; attempt++) {
        pid_t pid = fork();
        if (pid == 0) {
            char cmd[2048];
            snprintf(cmd, sizeof cmd,
                     "cd '%s' && exec '%s' %s --out resumed.safetensors --checkpoint run.ckpt --checkpoint-every 37 "
                     "> kill-out.txt 2> kill-err.txt",
                     dir, bin, args);
            execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        struct stat sb;
        struct timespec ts = { 0, 2000000 };
        int waited = 0;
        while (stat(ck, &sb) != 0 && waited < 60000) {
            nanosleep(&ts, NULL);
            waited += 2;
        }
        /* let it run on a little, into the middle of an epoch */
        struct timespec more = { 0, 150000000L * (attempt + 1) };
        nanosleep(&more, NULL);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        killed_mid = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && stat(outp, &sb) != 0 && stat(ck, &sb) == 0;
        /* the checkpoint must sit in the middle of an epoch (not at its end) */
        struct sk_safetensors *f = killed_mid ? sk_safetensors_read(ck) : NULL;
        const char *state = f ? sk_safetensors_meta(f, "skeptic.state") : NULL;
        cJSON *so = state ? cJSON_Parse(state) : NULL;
        ck_batch = so ? atoi(str(so, "batch")) : -1;
        cJSON_Delete(so);
        sk_safetensors_free(f);
        killed_mid = killed_mid && ck_batch > 0;
        if (!killed_mid) unlink(ck);
    }
    CHECK(killed_mid, "the run was killed by SIGKILL mid-epoch (checkpoint at batch %d), before it finished",
          ck_batch);
    snprintf(a, sizeof a, "%s --out resumed.safetensors --checkpoint run.ckpt --checkpoint-every 37 --resume --json",
             args);
    rc = run(a);
    o = json_out();
    CHECK(rc == 0 && o && strstr(err_buf, "resuming from"), "resumed run: rc %d %s", rc, err_buf);
    const char *b = strstr(err_buf, ", batch ");
    int batch = b ? atoi(b + 8) : -1;
    CHECK(batch > 0 && batch == ck_batch, "resumed mid-epoch (batch %d, checkpoint at %d)", batch, ck_batch);
    CHECK(o && !strcmp(str(o, "weights_fnv1a64"), full_hash), "killed + resumed run ends bitwise identical: %s vs %s",
          o ? str(o, "weights_fnv1a64") : "?", full_hash);
    cJSON_Delete(o);
    /* and the files agree, read back through info */
    rc = run("info resumed.safetensors --json");
    o = json_out();
    CHECK(o && !strcmp(str(o, "weights_fnv1a64"), full_hash), "model file hash matches");
    cJSON_Delete(o);
    /* a checkpoint from another configuration is refused */
    snprintf(a, sizeof a, "%s --seed 6 --out x.safetensors --checkpoint run.ckpt --resume", args);
    rc = run(a);
    CHECK(rc == 1 && strstr(err_buf, "run.ckpt") && strstr(err_buf, "seed"), "mismatched resume: %s", err_buf);
}

int main(void)
{
    const char *bd = getenv("SKEPTIC_BUILD_DIR");
    snprintf(bin, sizeof bin, "%s/skeptic", bd ? bd : ".");
    if (access(bin, X_OK) != 0) {
        char cwd[512];
        if (getcwd(cwd, sizeof cwd)) snprintf(bin, sizeof bin, "%s/skeptic", cwd);
    }
    snprintf(dir, sizeof dir, "%s", sk_test_tmpdir());
    test_usage();
    test_train_eval_json();
    test_failures_leave_outputs();
    test_kill_resume();
    return sk_test_finish("test_cli");
}
