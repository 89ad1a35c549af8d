/* The Bayesian side of the command line, driven as a user would on small
 * synthetic data: skeptic train --method vi | mc-dropout | ensemble | sgld |
 * laplace (exit 0, the file written, info naming the method), skeptic eval
 * --samples S --json (the uncertainty report's keys, ranges and internal
 * consistency: the ECE recomputed from the reliability table, accuracy at
 * full coverage, the same seed giving the same bytes), --plots writing
 * valid PNG files, skeptic compare --json (one row per method with the
 * table's keys), and the error paths (exit 2 for usage, 1 for failures, a
 * message naming the problem, no output left behind). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define DATA "moons:n=200,noise=0.1"
#define OOD "blobs:n=100,k=2,dim=2,seed=9"

static bool exists(const char *name)
{
    struct stat st;
    return stat(sk_test_path(name), &st) == 0;
}

struct method {
    const char *name, *args;
    int members;           /* stored members / samples (0: none) */
    bool stochastic;       /* samples differ, so the mutual information is > 0 */
};

static const struct method methods[] = {
    { "vi", "--arch mlp:2-16-16-2:relu --epochs 12 --lr 0.01 --kl-weight 0.1", 0, true },
    { "mc-dropout", "--arch mlp:2-16-16-2:relu:dropout0.1 --epochs 12 --lr 0.01", 0, true },
    { "ensemble", "--arch mlp:2-16-16-2:relu --members 3 --epochs 12 --lr 0.01", 3, true },
    { "sgld", "--arch mlp:2-16-16-2:relu --epochs 12 --lr 0.01 --sgld-epochs 2 --sgld-thin 2 --sgld-keep 3", 3, true },
    { "laplace", "--arch mlp:2-16-16-2:relu --epochs 12 --lr 0.01", 0, true },
};
#define N_METHODS (int)(sizeof methods / sizeof methods[0])

static cJSON *item(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The uncertainty report of `skeptic eval --samples 8 --ood OOD --json`. */
static void check_report(const struct method *me, cJSON *o)
{
    const char *nm = me->name;
    int n = (int)sk_json_num(o, "n"), S = (int)sk_json_num(o, "samples");
    double acc = sk_json_num(o, "accuracy"), nll = sk_json_num(o, "nll"), ece = sk_json_num(o, "ece");
    double brier = sk_json_num(o, "brier"), mi = sk_json_num(o, "mean_mi"), ent = sk_json_num(o, "mean_entropy");
    CHECK(!strcmp(sk_json_str(o, "method"), nm), "%s: eval names the method '%s'", nm, sk_json_str(o, "method"));
    CHECK(n == 200, "%s: 200 test rows (%d)", nm, n);
    CHECK(S == (me->members ? me->members : 8), "%s: %d samples", nm, S);
    CHECK(acc > 0.8 && acc <= 1, "%s: moons accuracy %g", nm, acc);
    CHECK(nll > 0 && nll < 0.5, "%s: NLL %g", nm, nll);
    CHECK(ece >= 0 && ece < 0.25, "%s: ECE %g", nm, ece);
    CHECK(brier >= 0 && brier < 0.35, "%s: Brier %g", nm, brier);
    CHECK(ent > 0 && ent <= log(2) + 1e-9 && mi >= 0 && mi <= ent + 1e-9, "%s: mean entropy %g, mean MI %g", nm, ent, mi);
    if (me->stochastic) CHECK(mi > 0, "%s: the samples disagree somewhere (mean MI %g)", nm, mi);
    /* the reliability table: bins partition [0,1], counts add up to n, each
     * bin's mean confidence lies inside it, and ECE is its weighted gap */
    cJSON *rel = item(o, "reliability");
    int nb = cJSON_GetArraySize(rel), total = 0, ok_bins = 0;
    double ece_tab = 0, acc_tab = 0, prev_hi = 0;
    bool tiled = nb > 0;
    for (int b = 0; b < nb; b++) {
        cJSON *e = cJSON_GetArrayItem(rel, b);
        double lo = sk_json_num(e, "lo"), hi = sk_json_num(e, "hi"), cnt = sk_json_num(e, "count");
        tiled = tiled && fabs(lo - prev_hi) < 1e-12 && hi > lo;
        prev_hi = hi;
        total += (int)cnt;
        if (cnt > 0) {
            double cf = sk_json_num(e, "confidence"), ac = sk_json_num(e, "accuracy");
            ok_bins += cf > lo - 1e-9 && cf <= hi + 1e-9 && ac >= 0 && ac <= 1;
            ece_tab += cnt / n * fabs(ac - cf);
            acc_tab += cnt * ac / n;
        } else {
            ok_bins += cJSON_IsNull(item(e, "confidence"));
        }
    }
    CHECK(nb == 15 && tiled && fabs(prev_hi - 1) < 1e-12, "%s: 15 bins tiling [0,1] (%d)", nm, nb);
    CHECK(total == n, "%s: reliability counts add up to n (%d)", nm, total);
    CHECK(ok_bins == nb, "%s: every bin's confidence inside it, empty bins null (%d of %d)", nm, ok_bins, nb);
    CHECK(fabs(ece_tab - ece) < 1e-6, "%s: ECE %g = weighted gap of the table %g", nm, ece, ece_tab);
    CHECK(fabs(acc_tab - acc) < 1e-9, "%s: accuracy %g = the table's %g", nm, acc, acc_tab);
    /* selective prediction: full coverage is the accuracy; the most certain half does at least as well */
    cJSON *cov = item(o, "accuracy_at_coverage");
    CHECK(cJSON_GetArraySize(cov) == 4, "%s: 4 coverage levels", nm);
    double a50 = sk_json_num(cJSON_GetArrayItem(cov, 0), "accuracy"), a100 = sk_json_num(cJSON_GetArrayItem(cov, 3), "accuracy");
    CHECK(sk_json_num(cJSON_GetArrayItem(cov, 3), "coverage") == 1 && a100 == acc, "%s: accuracy at coverage 1 %g = %g", nm,
          a100, acc);
    CHECK(a50 >= a100 && a50 <= 1, "%s: accuracy at 50%% coverage %g >= at 100%% %g", nm, a50, a100);
    /* detection: AUROC, AUPR, FPR95 of each score, for misclassification and OOD */
    const char *scores[3] = { "maxprob", "entropy", "mi" };
    cJSON *ood = item(o, "ood"), *mis = item(o, "misclassification");
    CHECK(ood && sk_json_num(ood, "n") == 200 && !strcmp(sk_json_str(ood, "data"), OOD), "%s: ood block", nm);
    for (int s = 0; s < 3; s++) {
        cJSON *d = item(ood, scores[s]), *m = item(mis, scores[s]);
        double au = sk_json_num(d, "auroc"), ap = sk_json_num(d, "aupr"), fp = sk_json_num(d, "fpr95");
        CHECK(au >= 0 && au <= 1 && ap >= 0 && ap <= 1 && fp >= 0 && fp <= 1, "%s: OOD by %s: AUROC %g AUPR %g FPR95 %g",
              nm, scores[s], au, ap, fp);
        CHECK(sk_json_num(m, "auroc") >= 0 && sk_json_num(m, "auroc") <= 1, "%s: misclassification by %s", nm, scores[s]);
    }
    /* max probability and entropy rank two-class predictions identically */
    CHECK(fabs(sk_json_num(item(ood, "maxprob"), "auroc") - sk_json_num(item(ood, "entropy"), "auroc")) < 1e-9,
          "%s: two classes: OOD AUROC by max probability = by entropy", nm);
}

static void test_methods(void)
{
    char a[1024], first[1 << 16];
    for (int i = 0; i < N_METHODS; i++) {
        const struct method *me = &methods[i];
        char file[64];
        snprintf(file, sizeof file, "%s.safetensors", me->name);
        snprintf(a, sizeof a, "train --method %s --data " DATA " %s --batch 32 --seed 3 --threads 1 --out %s", me->name,
                 me->args, file);
        int rc = sk_cli_run(a);
        /* the summary names the file written ("model      FILE (...)") */
        CHECK(rc == 0 && exists(file) && strstr(sk_cli_out, "model ") && strstr(sk_cli_out, file),
              "train --method %s: rc %d %s%s", me->name, rc, sk_cli_out, sk_cli_err);
        snprintf(a, sizeof a, "info %s --json", file);
        rc = sk_cli_run(a);
        cJSON *o = sk_cli_json();
        CHECK(rc == 0 && o && !strcmp(sk_json_str(o, "method"), me->name) &&
                  !strcmp(sk_json_str(item(o, "metadata"), "skeptic.method"), me->name),
              "info shows method %s: rc %d %s %s", me->name, rc, sk_cli_out, sk_cli_err);
        CHECK(o && (int)sk_json_num(o, "members") == me->members, "%s: info members %g", me->name, sk_json_num(o, "members"));
        cJSON_Delete(o);
        snprintf(a, sizeof a, "info %s", file);
        char want[64];
        snprintf(want, sizeof want, "method    %s", me->name);
        CHECK(sk_cli_run(a) == 0 && strstr(sk_cli_out, want), "info text shows '%s'", want);

        snprintf(a, sizeof a, "eval --model %s --data " DATA " --samples 8 --ood " OOD " --threads 1 --json", file);
        rc = sk_cli_run(a);
        o = sk_cli_json();
        CHECK(rc == 0 && o, "eval %s --json: rc %d %s", me->name, rc, sk_cli_err);
        if (o) check_report(me, o);
        cJSON_Delete(o);
        /* the same command, the same bytes; another --mc-seed, other samples */
        snprintf(first, sizeof first, "%s", sk_cli_out);
        rc = sk_cli_run(a);
        CHECK(rc == 0 && !strcmp(first, sk_cli_out), "%s: eval twice with the same seed prints the same bytes", me->name);
        if (me->members == 0) {
            snprintf(a, sizeof a, "eval --model %s --data " DATA " --samples 8 --ood " OOD " --threads 1 --json --mc-seed 7",
                     file);
            rc = sk_cli_run(a);
            o = sk_cli_json();
            cJSON *f = cJSON_Parse(first);
            CHECK(rc == 0 && o && f && sk_json_num(o, "nll") != sk_json_num(f, "nll"),
                  "%s: another --mc-seed draws other samples (NLL %g vs %g)", me->name, o ? sk_json_num(o, "nll") : 0,
                  f ? sk_json_num(f, "nll") : 0);
            cJSON_Delete(o);
            cJSON_Delete(f);
        }
    }
    /* vi on a spec the local trick does not cover: --flipout, and --no-flipout the plain draw */
    char hash[2][32] = { "", "" };
    for (int v = 0; v < 2; v++) {
        snprintf(a, sizeof a, "train --method vi --data " DATA " --arch cnn:1x1x2-conv4k1-relu-flatten-dense2 --epochs 2 "
                 "--batch 32 --seed 3 --threads 1 %s --out cnn%d.safetensors", v ? "--no-flipout" : "--flipout", v);
        int rc = sk_cli_run(a);
        snprintf(a, sizeof a, "info cnn%d.safetensors --json", v);
        int rc2 = sk_cli_run(a);
        cJSON *o = sk_cli_json();
        snprintf(hash[v], sizeof hash[v], "%s", o ? sk_json_str(o, "weights_fnv1a64") : "");
        CHECK(rc == 0 && rc2 == 0 && strlen(hash[v]) == 16, "vi cnn %s: rc %d %d %s", v ? "--no-flipout" : "--flipout", rc,
              rc2, sk_cli_err);
        cJSON_Delete(o);
    }
    CHECK(strcmp(hash[0], hash[1]) != 0, "--flipout and --no-flipout train differently (%s, %s)", hash[0], hash[1]);
}

/* PNG: signature, then the IHDR chunk with width and height (big endian). */
static void check_png(const char *name, int want_w, int want_h)
{
    size_t n = 0;
    unsigned char *b = sk_test_file_bytes(name, &n);
    static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    bool ok = b && n > 33 && !memcmp(b, sig, 8) && !memcmp(b + 12, "IHDR", 4);
    long w = ok ? ((long)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19]) : -1;
    long h = ok ? ((long)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23]) : -1;
    CHECK(ok && w == want_w && h == want_h, "%s is a %dx%d PNG (%zu bytes, %ldx%ld)", name, want_w, want_h, n, w, h);
    /* and it ends with the IEND chunk */
    CHECK(ok && !memcmp(b + n - 8, "IEND", 4), "%s ends with IEND", name);
    free(b);
}

static void test_plots(void)
{
    int rc = sk_cli_run("eval --model vi.safetensors --data " DATA " --samples 5 --ood " OOD " --threads 1 --plots figs");
    CHECK(rc == 0 && strstr(sk_cli_out, "figs/reliability.png"), "eval --plots: rc %d %s", rc, sk_cli_err);
    check_png("figs/reliability.png", 560, 560);
    check_png("figs/entropy.png", 560, 420);
    check_png("figs/mutual_information.png", 560, 420);
}

static void test_compare(void)
{
    int rc = sk_cli_run("compare --data " DATA " --ood " OOD " --arch mlp:2-16-2:relu --methods deterministic,ensemble "
                        "--epochs 10 --batch 32 --lr 0.01 --members 2 --n-adv 20 --samples 4 --attack-samples 2 --pgd-steps 3 --threads 1 --json");
    cJSON *o = sk_cli_json();
    CHECK(rc == 0 && o, "compare --json prints one object: rc %d '%s' %s", rc, sk_cli_out, sk_cli_err);
    cJSON *rows = item(o, "methods");
    CHECK(cJSON_GetArraySize(rows) == 2, "one row per method (%d)", cJSON_GetArraySize(rows));
    CHECK(sk_json_num(o, "n_adv") == 20 && sk_json_num(o, "n_test") == 200 && !strcmp(sk_json_str(o, "ood"), OOD),
          "compare header: n_adv %g, n_test %g", sk_json_num(o, "n_adv"), sk_json_num(o, "n_test"));
    const char *names[2] = { "deterministic", "ensemble" };
    const char *keys[] = { "accuracy", "nll", "ece", "brier", "ood_auroc_entropy", "ood_auroc_mi", "ood_auroc_maxprob",
                           "fgsm_accuracy", "pgd_accuracy", "adv_auroc_mi", "adv_auroc_entropy" };
    for (int i = 0; i < 2 && i < cJSON_GetArraySize(rows); i++) {
        cJSON *r = cJSON_GetArrayItem(rows, i);
        CHECK(!strcmp(sk_json_str(r, "method"), names[i]), "row %d is %s (%s)", i, names[i], sk_json_str(r, "method"));
        CHECK(sk_json_num(r, "samples") == (i ? 2 : 1) && sk_json_num(r, "temperature") == 1 &&
                  sk_json_num(r, "train_seconds") >= 0,
              "%s: samples %g, temperature, train seconds", names[i], sk_json_num(r, "samples"));
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            double v = sk_json_num(r, keys[k]);
            /* NLL is unbounded above; the rest are rates or scores in [0, 1] (Brier [0, 2]) */
            bool ok = !strcmp(keys[k], "nll") ? v > 0 && v < 5 : v >= 0 && v <= (strcmp(keys[k], "brier") ? 1 : 2);
            CHECK(ok, "%s: %s = %g", names[i], keys[k], v);
        }
        CHECK(sk_json_num(r, "accuracy") > 0.75, "%s: accuracy %g", names[i], sk_json_num(r, "accuracy"));
    }
    /* one network: no disagreement, so MI ranks nothing (AUROC 1/2) */
    cJSON *d = cJSON_GetArrayItem(rows, 0);
    CHECK(d && sk_json_num(d, "ood_auroc_mi") == 0.5 && sk_json_num(d, "adv_auroc_mi") == 0.5,
          "deterministic: MI AUROC 0.5 (%g, %g)", sk_json_num(d, "ood_auroc_mi"), sk_json_num(d, "adv_auroc_mi"));
    cJSON_Delete(o);
    rc = sk_cli_run("compare --data " DATA " --ood none --arch mlp:2-8-2:relu --methods deterministic --epochs 1 --n-adv 0 --json");
    o = sk_cli_json();
    cJSON *r = o ? cJSON_GetArrayItem(item(o, "methods"), 0) : NULL;
    CHECK(rc == 0 && r && cJSON_IsNull(item(r, "ood_auroc_entropy")) && cJSON_IsNull(item(r, "pgd_accuracy")) &&
              cJSON_IsNull(item(r, "adv_auroc_mi")) && cJSON_IsNull(item(r, "adv_auroc_entropy")),
          "compare --ood none --n-adv 0: OOD and attack columns null: %s", sk_cli_out);
    cJSON_Delete(o);
}

static void test_errors(void)
{
    int rc = sk_cli_run("train --method bogus --data " DATA " --arch mlp:2-8-2 --out e1.safetensors");
    CHECK(rc == 2 && strstr(sk_cli_err, "'bogus'") && !exists("e1.safetensors"), "unknown --method: rc %d %s", rc, sk_cli_err);
    rc = sk_cli_run("train --method mc-dropout --data " DATA " --arch mlp:2-8-2:relu --epochs 1 --out e2.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "dropout") && strstr(sk_cli_err, "mlp:2-8-2:relu") && !exists("e2.safetensors"),
          "mc-dropout without dropout: rc %d %s", rc, sk_cli_err);
    rc = sk_cli_run("train --method vi --temperature --data " DATA " --arch mlp:2-8-2 --epochs 1 --out e3.safetensors");
    CHECK(rc == 2 && strstr(sk_cli_err, "--temperature") && strstr(sk_cli_err, "--val-split") && !exists("e3.safetensors"),
          "--temperature without --val-split: rc %d %s", rc, sk_cli_err);
    rc = sk_cli_run("train --method vi --flipout --no-flipout --data " DATA " --arch mlp:2-8-2 --out e4.safetensors");
    CHECK(rc == 2 && strstr(sk_cli_err, "--no-flipout") && !exists("e4.safetensors"), "contradicting flags: rc %d %s", rc,
          sk_cli_err);
    rc = sk_cli_run("eval --model missing.safetensors --data " DATA " --samples 5 --plots eplots");
    CHECK(rc == 1 && strstr(sk_cli_err, "missing.safetensors") && !exists("eplots"), "missing model: rc %d %s", rc,
          sk_cli_err);
    rc = sk_cli_run("eval --model vi.safetensors --data " DATA " --samples -1");
    CHECK(rc == 2 && strstr(sk_cli_err, "--samples"), "--samples -1: rc %d %s", rc, sk_cli_err);
    /* corrupted posteriors: truncated, and a header whose rho tensor was renamed */
    size_t n = 0;
    unsigned char *b = sk_test_file_bytes("vi.safetensors", &n);
    CHECK(b && n > 200, "read vi.safetensors back (%zu bytes)", n);
    if (!b || n <= 200) {
        free(b);
        return;
    }
    sk_test_write(sk_test_path("trunc.safetensors"), b, n / 2);
    unsigned char *r = NULL;
    for (size_t i = 0; i + 14 <= n; i++)
        if (!memcmp(b + i, "\"rho.0.weight\"", 14)) r = b + i;
    CHECK(r != NULL, "vi file holds rho.0.weight");
    if (r) r[1] = 'x';
    sk_test_write(sk_test_path("norho.safetensors"), b, n);
    free(b);
    rc = sk_cli_run("eval --model trunc.safetensors --data " DATA " --samples 5 --plots tplots");
    CHECK(rc == 1 && strstr(sk_cli_err, "trunc.safetensors") && strstr(sk_cli_err, "truncated") && !exists("tplots"),
          "truncated posterior: rc %d %s", rc, sk_cli_err);
    rc = sk_cli_run("eval --model norho.safetensors --data " DATA " --samples 5 --plots nplots");
    CHECK(rc == 1 && strstr(sk_cli_err, "norho.safetensors") && strstr(sk_cli_err, "rho.0.weight") && !exists("nplots"),
          "posterior without rho: rc %d %s", rc, sk_cli_err);
    rc = sk_cli_run("info norho.safetensors");
    CHECK(rc == 1 && strstr(sk_cli_err, "rho.0.weight"), "info of the broken posterior: rc %d %s", rc, sk_cli_err);
}

int main(void)
{
    test_methods();
    test_plots();
    test_compare();
    test_errors();
    return sk_test_finish("test_cli_bayes");
}
