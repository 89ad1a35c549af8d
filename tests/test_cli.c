/* The command line, driven as a user would: exit codes (0 / 1 runtime / 2
 * usage), --help with an example for every command, --json printing exactly
 * one object with the documented keys, --log JSON lines, failed runs leaving
 * existing output files untouched, and a training run killed with SIGKILL
 * mid-epoch then continued with --resume ending bitwise identical to an
 * uninterrupted run; a write cut off by a signal (SIGXFSZ from a file size
 * limit) leaves no temporary file behind. Runs $SKEPTIC_BUILD_DIR/skeptic. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static char dir[600];

static void test_usage(void)
{
    CHECK(sk_cli_run("--version") == 0 && !strncmp(sk_cli_out, "skeptic ", 8), "--version: %s", sk_cli_out);
    CHECK(sk_cli_run("") == 2, "no command is a usage error");
    CHECK(sk_cli_run("frobnicate") == 2 && strstr(sk_cli_err, "unknown command 'frobnicate'"), "unknown command");
    CHECK(sk_cli_run("--help") == 0 && strstr(sk_cli_out, "train") && strstr(sk_cli_out, "eval"), "top-level help");
    const char *cmds[] = { "train", "eval", "info", "data" };
    for (int i = 0; i < 4; i++) {
        char a[64];
        snprintf(a, sizeof a, "%s --help", cmds[i]);
        CHECK(sk_cli_run(a) == 0 && strstr(sk_cli_out, "example:\n  skeptic ") && strstr(sk_cli_out, "usage: skeptic"),
              "%s --help shows usage and an example", cmds[i]);
    }
    CHECK(sk_cli_run("train --arch mlp:2-8-2 --out m.st") == 2 && strstr(sk_cli_err, "--data"), "train without --data: %s",
          sk_cli_err);
    CHECK(sk_cli_run("train --data moons --arch mlp:2-8-2 --out m.st --epochs ten") == 2 &&
              strstr(sk_cli_err, "--epochs expects an integer, got 'ten'"),
          "bad integer: %s", sk_cli_err);
    CHECK(sk_cli_run("train --data moons --arch mlp:2-8-2 --out m.st --frobs 3") == 2 && strstr(sk_cli_err, "--frobs"),
          "unknown option");
    CHECK(sk_cli_run("train --data moons --arch mlp:2-8-2 --out m.st --optimizer adagrad") == 2 && strstr(sk_cli_err, "adagrad"),
          "unknown optimizer");
    CHECK(sk_cli_run("train --data moons --arch mlp:2-x-2 --out m.st") == 2 && strstr(sk_cli_err, "column"), "bad spec: %s",
          sk_cli_err);
    CHECK(sk_cli_run("train --data moons --arch mlp:2-8-2 --out m.st --early-stop 3") == 2 && strstr(sk_cli_err, "--val-split"),
          "early stop without validation");
    CHECK(sk_cli_run("eval --model nope.safetensors --data moons") == 1 && strstr(sk_cli_err, "nope.safetensors"),
          "missing model is a runtime failure naming the file: %s", sk_cli_err);
    CHECK(sk_cli_run("eval --data moons") == 2, "eval without --model");
    CHECK(sk_cli_run("info") == 2, "info without a file");
    CHECK(sk_cli_run("data no-such-thing") == 1 && strstr(sk_cli_err, "no-such-thing"), "unknown data: %s", sk_cli_err);
}

static void test_train_eval_json(void)
{
    int rc = sk_cli_run("train --data moons:n=400,noise=0.1 --arch mlp:2-32-32-2:relu --epochs 30 --batch 32 --lr 0.01 "
                 "--seed 2 --val-split 0.1 --out moons.safetensors --log moons.jsonl --json");
    cJSON *o = sk_cli_json();
    CHECK(rc == 0 && o, "train --json prints one object: rc %d, '%s' '%s'", rc, sk_cli_out, sk_cli_err);
    double tacc = sk_json_num(o, "test_accuracy");
    CHECK(tacc > 0.95 && tacc <= 1, "moons test accuracy %g", tacc);
    CHECK(sk_json_num(o, "train_rows") == 360 && sk_json_num(o, "val_rows") == 40 && sk_json_num(o, "test_rows") == 400, "row counts");
    CHECK(strlen(sk_json_str(o, "weights_fnv1a64")) == 16, "train reports the weights hash");
    cJSON_Delete(o);
    /* the log: one JSON object per epoch */
    char p[700], logb[1 << 15];
    snprintf(p, sizeof p, "%s/moons.jsonl", dir);
    sk_test_slurp(p, logb, sizeof logb);
    int lines = 0, good = 0;
    for (char *l = strtok(logb, "\n"); l; l = strtok(NULL, "\n")) {
        cJSON *e = cJSON_Parse(l);
        lines++;
        good += e && sk_json_num(e, "epoch") == lines && sk_json_num(e, "train_loss") > 0 && cJSON_GetObjectItem(e, "val_acc");
        cJSON_Delete(e);
    }
    CHECK(lines == 30 && good == 30, "--log has 30 epoch lines (%d, %d good)", lines, good);

    rc = sk_cli_run("eval --model moons.safetensors --data moons:n=400,noise=0.1 --json");
    o = sk_cli_json();
    CHECK(rc == 0 && o, "eval --json: %s %s", sk_cli_out, sk_cli_err);
    CHECK(sk_json_num(o, "accuracy") == tacc && sk_json_num(o, "loss") > 0 && sk_json_num(o, "n") == 400, "eval accuracy %g equals train's test accuracy %g",
          sk_json_num(o, "accuracy"), tacc);
    cJSON *cm = cJSON_GetObjectItem(o, "confusion"), *pc = cJSON_GetObjectItem(o, "per_class_accuracy");
    CHECK(cJSON_GetArraySize(cm) == 2 && cJSON_GetArraySize(pc) == 2, "confusion matrix and per-class accuracy");
    double diag = cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 0), 0)->valuedouble +
                  cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 1), 1)->valuedouble;
    CHECK(diag / 400 == tacc, "confusion diagonal gives the accuracy");
    cJSON_Delete(o);
    rc = sk_cli_run("eval --model moons.safetensors --data moons:n=400,noise=0.1");
    CHECK(rc == 0 && strstr(sk_cli_out, "accuracy") && strstr(sk_cli_out, "confusion matrix"), "eval text output");
    rc = sk_cli_run("info moons.safetensors --json");
    o = sk_cli_json();
    CHECK(rc == 0 && o && sk_json_num(o, "params") == 2 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2 &&
              !strcmp(sk_json_str(o, "arch"), "mlp:2-32-32-2:relu") && cJSON_GetObjectItem(o, "metadata"),
          "info --json: %s", sk_cli_out);
    cJSON_Delete(o);
    rc = sk_cli_run("data moons:n=100 --json");
    o = sk_cli_json();
    cJSON *tr = o ? cJSON_GetObjectItem(cJSON_GetObjectItem(o, "splits"), "train") : NULL;
    CHECK(rc == 0 && tr && sk_json_num(tr, "n") == 100 && sk_json_num(tr, "n_classes") == 2, "data --json: %s", sk_cli_out);
    cJSON_Delete(o);
    /* a model for other data is refused with a clear message */
    rc = sk_cli_run("eval --model moons.safetensors --data blobs:dim=3");
    CHECK(rc == 1 && strstr(sk_cli_err, "expects 2"), "data that does not fit the model: %s", sk_cli_err);
}

/* Adversarial training and attacks on data outside [0,1] (moons lie in
 * about [-1.2, 2.2]): the input box is the data's range, not [0,1] -- with
 * [0,1] adversarial training pulled every point into the box (37% test
 * accuracy) and attacks could only move coordinates towards it. */
static void test_adv_box(void)
{
    const char *D = "moons:n=400,noise=0.1";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-32-32-2:relu --epochs 30 --batch 32 --lr 0.01 --seed 2 "
             "--adv pgd --adv-eps 0.1 --adv-steps 5 --out advm.safetensors --json", D);
    int rc = sk_cli_run(cmd);
    cJSON *o = sk_cli_json();
    double acc = sk_json_num(o, "test_accuracy");
    CHECK(rc == 0 && acc > 0.95, "train --adv pgd on moons: test accuracy %g (rc %d) %s", acc, rc, sk_cli_err);
    CHECK(strstr(sk_cli_err, "range") && strstr(sk_cli_err, "input box"), "train --adv names the box: %s", sk_cli_err);
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack pgd --eps 0.1 --steps 20 --json", D);
    rc = sk_cli_run(cmd);
    o = sk_cli_json();
    cJSON *box = o ? cJSON_GetObjectItem(o, "box") : NULL;
    double lo = box ? cJSON_GetArrayItem(box, 0)->valuedouble : 0, hi = box ? cJSON_GetArrayItem(box, 1)->valuedouble : 0;
    CHECK(rc == 0 && lo < -1 && hi > 2, "attack box is the data's range [%g, %g], not [0,1]", lo, hi);
    double robust = sk_json_num(o, "robust_accuracy");
    CHECK(robust > 0.5 && robust <= sk_json_num(o, "clean_accuracy"), "PGD-trained moons keep %g under PGD-20", robust);
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack pgd --eps 0.1 --clip-min 0 --clip-max 1", D);
    CHECK(sk_cli_run(cmd) == 1 && strstr(sk_cli_err, "outside --clip-min"), "a box that excludes the data: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack pgd --eps 0.1 --clip-min -3", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "both"), "half a box: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack pgd --eps 0.1 --clip-min -3 --clip-max 3 --json", D);
    rc = sk_cli_run(cmd);
    o = sk_cli_json();
    box = o ? cJSON_GetObjectItem(o, "box") : NULL;
    CHECK(rc == 0 && box && cJSON_GetArrayItem(box, 0)->valuedouble == -3 && cJSON_GetArrayItem(box, 1)->valuedouble == 3,
          "--clip-min/--clip-max are used as given: %s", sk_cli_out);
    cJSON_Delete(o);

    /* the other adversarial-training options */
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 2 --adv fgsm-mix --out mix.safetensors", D);
    CHECK(sk_cli_run(cmd) == 0, "train --adv fgsm-mix: %s", sk_cli_err);
    rc = sk_cli_run("info mix.safetensors --json");
    o = sk_cli_json();
    cJSON *md = o ? cJSON_GetObjectItem(o, "metadata") : NULL;
    CHECK(rc == 0 && md && !strcmp(sk_json_str(md, "skeptic.adv"), "fgsm-mix") && !strcmp(sk_json_str(md, "skeptic.adv_eps"), "0.01"),
          "fgsm-mix defaults to eps 0.01, recorded in the file: %s", sk_cli_out);
    cJSON_Delete(o);
    /* the library names config fields; the CLI names the flags that set them */
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack cw --norm linf --eps 0.1", D);
    CHECK(sk_cli_run(cmd) != 0 && strstr(sk_cli_err, "--norm l2"), "cw with linf rejected: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "attack --model advm.safetensors --data %s --attack pgd --eps -1", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "--eps"), "negative eps rejected: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 2 --adv pgd --adv-eps -1 --out ne.safetensors", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "--adv-eps"), "negative eps refused: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --method vi --data %s --arch mlp:2-16-2:relu --epochs 2 --adv pgd --adv-eps -0.5 --out nv.safetensors", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "--adv-eps"), "VI refuses a negative eps: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 2 --adv fgsm-ep --adv-lambda -1 --out ep.safetensors", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "--adv-lambda"), "negative FGSM-EP lambda refused: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 2 --adv n-fgsm --adv-noise -1 --out nf.safetensors", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "--adv-noise"), "negative --adv-noise: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 2 --adv nuat --adv-lambda -1 --out nu.safetensors", D);
    CHECK(sk_cli_run(cmd) == 2 && strstr(sk_cli_err, "NuAT") && strstr(sk_cli_err, "--adv-lambda"), "negative NuAT --adv-lambda: %s",
          sk_cli_err);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 20 --lr 0.01 --adv nuat --adv-lambda 2 --val-split 0.25 --out nu.safetensors --json", D);
    rc = sk_cli_run(cmd);
    o = sk_cli_json();
    acc = sk_json_num(o, "test_accuracy");
    CHECK(rc == 0 && acc > 0.8 && strstr(sk_cli_err, "guard: kept the weights of epoch"),
          "train --adv nuat learns moons (test accuracy %g) with the guard: %s", acc, sk_cli_err);
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --epochs 3 --adv fgsm --val-split 0.25 --out fg.safetensors", D);
    CHECK(sk_cli_run(cmd) == 0 && strstr(sk_cli_err, "guard: kept the weights of epoch"), "fgsm guard reports its epoch: %s",
          sk_cli_err);
    /* --adv with --normalize: eps in the data's units (test_model_file checks the robustness) */
    snprintf(cmd, sizeof cmd, "train --data %s --arch mlp:2-16-2:relu --adv pgd --normalize standardize --out x.safetensors", D);
    CHECK(sk_cli_run(cmd) == 0, "--adv with normalisation trains: %s", sk_cli_err);
}

static void test_failures_leave_outputs(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/bad.csv", dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "a,b,y\n1,2,0\n3,nan,1\n");
    fclose(f);
    size_t n0, n1;
    unsigned char *before = sk_test_file_bytes("moons.safetensors", &n0);
    int rc = sk_cli_run("train --data bad.csv --arch mlp:2-4-2 --out moons.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "bad.csv:3: column 2"), "bad CSV: rc %d '%s'", rc, sk_cli_err);
    rc = sk_cli_run("train --data moons --arch mlp:3-4-2 --out moons.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "takes 3 inputs"), "arch that does not fit the data: %s", sk_cli_err);
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
        rc = sk_cli_run(a);
        CHECK(rc == 1 && strstr(sk_cli_err, bad[i].name) && strstr(sk_cli_err, bad[i].want), "bad %s: rc %d '%s'", bad[i].name,
              rc, sk_cli_err);
    }
    /* an .npy without a labels file: the library names labels_path, the CLI the flag */
    snprintf(p, sizeof p, "%s/lonely.npy", dir);
    f = fopen(p, "wb");
    {
        const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
        unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)strlen(h), 0 };
        float v[4] = { 0, 1, 2, 3 };
        fwrite(pre, 1, 10, f);
        fwrite(h, 1, strlen(h), f);
        fwrite(v, sizeof v, 1, f);
    }
    fclose(f);
    rc = sk_cli_run("train --data lonely.npy --arch mlp:2-4-2 --out moons.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "--labels"), "no labels file: %s", sk_cli_err);
    unsigned char *after = sk_test_file_bytes("moons.safetensors", &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0), "failed runs leave the existing model untouched");
    free(before);
    free(after);
    /* a corrupt model file: runtime failure naming it */
    snprintf(p, sizeof p, "%s/corrupt.safetensors", dir);
    f = fopen(p, "w");
    fprintf(f, "this is not a model");
    fclose(f);
    rc = sk_cli_run("eval --model corrupt.safetensors --data moons");
    CHECK(rc == 1 && strstr(sk_cli_err, "corrupt.safetensors") && strstr(sk_cli_err, "header length"), "corrupt model: %s",
          sk_cli_err);
}

static void test_kill_resume(void)
{
    const char *args = "train --data blobs:n=12000,k=4,dim=20 --arch mlp:20-96-96-4:relu:dropout0.2 --epochs 3 "
                       "--batch 16 --optimizer adam --schedule cosine --val-split 0.1 --seed 5 --threads 1 --quiet";
    char a[1024];
    snprintf(a, sizeof a, "%s --out full.safetensors --json", args);
    int rc = sk_cli_run(a);
    cJSON *o = sk_cli_json();
    char full_hash[32] = "";
    snprintf(full_hash, sizeof full_hash, "%s", o ? sk_json_str(o, "weights_fnv1a64") : "");
    CHECK(rc == 0 && strlen(full_hash) == 16, "uninterrupted run: %s", sk_cli_err);
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
                     dir, sk_cli_bin(), args);
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
        ck_batch = so ? atoi(sk_json_str(so, "batch")) : -1;
        cJSON_Delete(so);
        sk_safetensors_free(f);
        killed_mid = killed_mid && ck_batch > 0;
        if (!killed_mid) {
            /* the run finished (or was killed at a boundary) first: clear both files for the next try */
            unlink(ck);
            unlink(outp);
        }
    }
    CHECK(killed_mid, "the run was killed by SIGKILL mid-epoch (checkpoint at batch %d), before it finished",
          ck_batch);
    snprintf(a, sizeof a, "%s --out resumed.safetensors --checkpoint run.ckpt --checkpoint-every 37 --resume --json",
             args);
    rc = sk_cli_run(a);
    o = sk_cli_json();
    CHECK(rc == 0 && o && strstr(sk_cli_err, "resuming from"), "resumed run: rc %d %s", rc, sk_cli_err);
    const char *b = strstr(sk_cli_err, ", batch ");
    int batch = b ? atoi(b + 8) : -1;
    CHECK(batch > 0 && batch == ck_batch, "resumed mid-epoch (batch %d, checkpoint at %d)", batch, ck_batch);
    CHECK(o && !strcmp(sk_json_str(o, "weights_fnv1a64"), full_hash), "killed + resumed run ends bitwise identical: %s vs %s",
          o ? sk_json_str(o, "weights_fnv1a64") : "?", full_hash);
    cJSON_Delete(o);
    /* and the files agree, read back through info */
    rc = sk_cli_run("info resumed.safetensors --json");
    o = sk_cli_json();
    CHECK(o && !strcmp(sk_json_str(o, "weights_fnv1a64"), full_hash), "model file hash matches");
    cJSON_Delete(o);
    /* a checkpoint from another configuration is refused */
    snprintf(a, sizeof a, "%s --seed 6 --out x.safetensors --checkpoint run.ckpt --resume", args);
    rc = sk_cli_run(a);
    CHECK(rc == 1 && strstr(sk_cli_err, "run.ckpt") && strstr(sk_cli_err, "seed"), "mismatched resume: %s", sk_cli_err);
}

/* A file size limit (a full quota) in the middle of the model file: the
 * write fails with EFBIG (SIGXFSZ is ignored), the command says so and exits
 * 1, the temporary file is removed and nothing named like the output is
 * left. */
static void test_signal_cleanup(void)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ulimit -f 8 && SKEPTIC_NO_PROGRESS=1 '%s' train --data moons --arch mlp:2-64-64-2 "
             "--epochs 1 --quiet --out fsz.safetensors > fsz-out.txt 2> fsz-err.txt",
             dir, sk_cli_bin());
    int st = system(cmd);
    char err[4096];
    sk_test_slurp(sk_test_path("fsz-err.txt"), err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && strstr(err, "fsz.safetensors") && strstr(err, "file size limit"),
          "over the file size limit: exit 1 and a message naming the file (status %d): %s", st, err);
    DIR *d = opendir(dir);
    int left = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "fsz.safetensors", 15)) {
            left++;
            fprintf(stderr, "  left behind: %s\n", e->d_name);
        }
    if (d) closedir(d);
    CHECK(d && left == 0, "no output or temporary file left after the signal (%d)", left);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", sk_test_tmpdir());
    test_usage();
    test_train_eval_json();
    test_adv_box();
    test_failures_leave_outputs();
    test_kill_resume();
    test_signal_cleanup();
    return sk_test_finish("test_cli");
}
