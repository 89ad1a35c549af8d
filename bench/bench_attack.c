/* bench_attack — robustness figures and PGD-20 throughput on Fashion-MNIST,
 * as JSON lines, with the PyTorch counterpart (bench/bench_attack_torch.py)
 * run on the same weights and test points in the same run.
 *
 *   bench_attack [--n N] [--cnn-n N] [--epochs-mlp E] [--epochs-cnn E] [--dir DIR]
 *                [--reps R] [--threads T] [--no-torch] [--only mlp|cnn] [--no-suite] [--throughput-only]
 *
 * Models: mlp:784-512-512-10:relu and the CNN of the benchmarks, trained here
 * with sk_train (Adam 1e-3, batch 128, seed 1) unless DIR/NAME.safetensors
 * exists (then loaded); both are saved to DIR (default /tmp/skeptic-bench-attack).
 * On the first N test points (CNN: --cnn-n, default 1000: the CNN is slow on
 * two shared cores) it reports clean accuracy, FGSM and PGD-20 at eps 0.1
 * (step 2.5 eps / 20, no random start, as the PyTorch side), the suite at
 * eps 0.1 with the per-sample check against PGD-20, the accuracy-vs-eps
 * curve, and PGD-20 throughput (samples/s, median of R runs) twice: as the
 * library runs it (a point that is broken keeps its first adversarial
 * example and leaves the batch) and with keep_going (every point all 20
 * steps: the work of the plain PyTorch loop). OMP_WAIT_POLICY defaults to
 * PASSIVE for both sides (spinning OpenMP threads wreck timings on a shared
 * machine). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skeptic/attack.h"
#include "skeptic/skeptic.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static struct sk_model *get_model(const char *name, const char *spec, const char *dir, int epochs,
                                  const struct sk_dataset *tr)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    struct stat st;
    if (stat(path, &st) == 0) {
        struct sk_model *m = sk_model_load(path, NULL, NULL);
        if (m) {
            fprintf(stderr, "bench_attack: loaded %s\n", path);
            return m;
        }
        fprintf(stderr, "bench_attack: %s (retraining)\n", sk_last_error());
    }
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m || sk_model_init(m, SK_INIT_TORCH, 1)) return NULL;
    struct sk_train_config c = sk_train_defaults();
    c.epochs = epochs;
    c.batch = 128;
    c.seed = 1;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = 1e-3f;
    double t0 = sk_now();
    if (sk_train(m, &c, tr->x, tr->y, tr->n)) {
        fprintf(stderr, "bench_attack: training %s: %s\n", name, sk_last_error());
        sk_model_free(m);
        return NULL;
    }
    fprintf(stderr, "bench_attack: trained %s (%d epochs, %.0f s)\n", name, epochs, sk_now() - t0);
    if (sk_model_save(m, path, NULL)) fprintf(stderr, "bench_attack: saving %s: %s\n", path, sk_last_error());
    return m;
}

static struct sk_attack_result *run(struct sk_classifier *c, enum sk_attack_kind k, float eps, int steps,
                                    const struct sk_dataset *te, int n)
{
    struct sk_attack_config cfg = sk_attack_defaults(k, SK_NORM_LINF, eps);
    cfg.steps = steps;
    cfg.seed = 1;
    struct sk_attack_result *r = sk_attack_evaluate(c, &cfg, te->x, te->y, n);
    if (!r) fprintf(stderr, "bench_attack: %s: %s\n", sk_attack_name(k), sk_last_error());
    return r;
}

static double curves[2][5];
static int n_curves;
static const char *curve_names[2];

static bool throughput_only;
static int tbatch = 256;

static int bench(const char *name, struct sk_model *m, const struct sk_dataset *te, int n, int reps, bool suite,
                 bool torch, const char *dir, int threads)
{
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    if (!c) return 1;
    if (n > te->n) n = te->n;
    struct sk_attack_result *fg = NULL, *pg = NULL;
    if (throughput_only) goto throughput;
    fg = run(c, SK_ATTACK_FGSM, 0.1f, 0, te, n);
    pg = run(c, SK_ATTACK_PGD, 0.1f, 20, te, n);
    if (!fg || !pg) return 1;
    printf("{\"bench\":\"attack\",\"model\":\"%s\",\"n\":%d,\"clean_acc\":%.4f,\"fgsm_eps0.1\":%.4f,"
           "\"pgd20_eps0.1\":%.4f,\"pgd20_grad_evals\":%ld,\"pgd20_seconds\":%.2f,\"threads\":%d}\n",
           name, n, pg->clean_acc, fg->robust_acc, pg->robust_acc, pg->grad_evals, pg->seconds, threads);
    fflush(stdout);
    if (suite) {
        struct sk_attack_result *su = run(c, SK_ATTACK_SUITE, 0.1f, 0, te, n);
        if (su) {
            int worse = 0;
            for (int i = 0; i < n; i++) worse += su->robust[i] && !pg->robust[i];
            printf("{\"bench\":\"attack-suite\",\"model\":\"%s\",\"n\":%d,\"suite_eps0.1\":%.4f,"
                   "\"pgd20_eps0.1\":%.4f,\"points_suite_robust_but_pgd_broken\":%d,\"seconds\":%.1f,\"stages\":[",
                   name, n, su->robust_acc, pg->robust_acc, worse, su->seconds);
            for (int s = 0; s < su->n_stages; s++)
                printf("%s{\"attack\":\"%s\",\"attacked\":%d,\"broken\":%d,\"robust_acc\":%.4f,\"seconds\":%.1f}",
                       s ? "," : "", su->stages[s].name, su->stages[s].n_attacked, su->stages[s].n_broken,
                       su->stages[s].robust_acc, su->stages[s].seconds);
            printf("],\"warnings\":%d}\n", su->n_warnings);
            for (int i = 0; i < su->n_warnings; i++) fprintf(stderr, "warning: %s\n", su->warnings[i]);
            fflush(stdout);
            sk_attack_result_free(su);
        }
    }
    float eps[] = { 0, 0.02f, 0.05f, 0.1f, 0.2f };
    double acc[5];
    struct sk_attack_config cc = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0);
    cc.steps = 20;
    bool curve_ok = sk_attack_curve(c, &cc, eps, 5, te->x, te->y, n, acc, NULL) == 0;
    if (curve_ok && n_curves < 2) {
        memcpy(curves[n_curves], acc, sizeof acc);
        curve_names[n_curves++] = name;
    }
    if (curve_ok)
        printf("{\"bench\":\"attack-curve\",\"model\":\"%s\",\"attack\":\"pgd-20\",\"n\":%d,\"eps\":[0,0.02,0.05,0.1,0.2],"
               "\"robust_acc\":[%.4f,%.4f,%.4f,%.4f,%.4f]}\n",
               name, n, acc[0], acc[1], acc[2], acc[3], acc[4]);
throughput:;
    /* throughput: sk_attack_run on all n points (broken points leave the batch) */
    double sps[16];
    float *xa = malloc(sizeof(float) * (size_t)n * m->in_dim);
    struct sk_attack_config cfg = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.1f);
    cfg.steps = 20;
    cfg.batch = tbatch;
    for (int r = 0; r < reps; r++) {
        double t0 = sk_now();
        sk_attack_run(c, &cfg, te->x, te->y, NULL, n, xa, NULL);
        sps[r] = n / (sk_now() - t0);
    }
    double med = median(sps, reps);
    /* the same with every row computed at every step (the work of the plain PyTorch loop) */
    double spsf[16];
    cfg.keep_going = true;
    for (int r = 0; r < reps; r++) {
        double t0 = sk_now();
        sk_attack_run(c, &cfg, te->x, te->y, NULL, n, xa, NULL);
        spsf[r] = n / (sk_now() - t0);
    }
    double medf = median(spsf, reps);
    free(xa);
    double torch_sps = 0, torch_acc = -1;
    if (torch) {
        char cmd[2048], path[512], here[512];
        /* the PyTorch script sits beside this file */
        snprintf(here, sizeof here, "%s", __FILE__);
        char *slash = strrchr(here, '/');
        if (slash) *slash = 0;
        else snprintf(here, sizeof here, "bench");
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
        snprintf(cmd, sizeof cmd,
                 "OMP_WAIT_POLICY=PASSIVE %s %s/bench_attack_torch.py --model %s --n %d --reps %d --threads %d --batch %d",
                 access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3", here, path, n, reps, threads, tbatch);
        FILE *p = popen(cmd, "r");
        char line[4096];
        while (p && fgets(line, sizeof line, p)) {
            fputs(line, stdout);
            char *q = strstr(line, "\"samples_per_s\":");
            if (q) torch_sps = atof(q + 16);
            q = strstr(line, "\"pgd20_eps0.1\":");
            if (q) torch_acc = atof(q + 15);
        }
        if (p) pclose(p);
    }
    printf("{\"bench\":\"attack-throughput\",\"model\":\"%s\",\"attack\":\"pgd-20 linf\",\"n\":%d,\"batch\":256,"
           "\"samples_per_s\":%.1f,\"samples_per_s_keep_going\":%.1f,\"runs\":%d,\"batch_used\":%d,\"torch_samples_per_s\":%.1f,\"speedup_vs_torch\":%.2f,\"speedup_keep_going_vs_torch\":%.2f,"
           "\"skeptic_pgd20\":%.4f,\"torch_pgd20\":%.4f,\"threads\":%d,\"blas_core\":\"%s\"}\n",
           name, n, med, medf, reps, tbatch, torch_sps, torch_sps > 0 ? med / torch_sps : 0.0, torch_sps > 0 ? medf / torch_sps : 0.0, pg ? pg->robust_acc : -1.0, torch_acc, threads,
           sk_blas_core());
    fflush(stdout);
    sk_attack_result_free(fg);
    sk_attack_result_free(pg);
    sk_classifier_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    /* OpenMP threads that spin while waiting ruin timings on a shared machine;
     * libgomp reads the policy when it loads, so set it and start again */
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        execv("/proc/self/exe", argv);
    }
    int n = 1000, cnn_n = 1000, ep_mlp = 5, ep_cnn = 2, reps = 3, threads = 0;
    bool torch = true, suite = true;
    const char *dir = "/tmp/skeptic-bench-attack", *only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--n") && v) n = atoi(argv[++i]);
        else if (!strcmp(a, "--cnn-n") && v) cnn_n = atoi(argv[++i]);
        else if (!strcmp(a, "--epochs-mlp") && v) ep_mlp = atoi(argv[++i]);
        else if (!strcmp(a, "--epochs-cnn") && v) ep_cnn = atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && v) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && v) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--dir") && v) dir = argv[++i];
        else if (!strcmp(a, "--only") && v) only = argv[++i];
        else if (!strcmp(a, "--no-torch")) torch = false;
        else if (!strcmp(a, "--no-suite")) suite = false;
        else if (!strcmp(a, "--throughput-only")) throughput_only = true;
        else if (!strcmp(a, "--batch") && v) tbatch = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_attack [--n N] [--cnn-n N] [--epochs-mlp E] [--epochs-cnn E] [--dir DIR] "
                            "[--reps R] [--threads T] [--only mlp|cnn] [--no-torch] [--no-suite] [--throughput-only]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (reps > 16) reps = 16;
    sk_set_threads(threads);
    threads = sk_get_threads();
    mkdir(dir, 0755);
    struct sk_dataset *tr = sk_data_fashion_mnist(NULL, "train"), *te = sk_data_fashion_mnist(NULL, "test");
    if (!tr || !te) {
        fprintf(stderr, "bench_attack: %s\n", sk_last_error());
        return 1;
    }
    int rc = 0;
    if (!only || !strcmp(only, "mlp")) {
        struct sk_model *m = get_model("mlp", "mlp:784-512-512-10:relu", dir, ep_mlp, tr);
        rc |= m ? bench("mlp", m, te, n, reps, suite, torch, dir, threads) : 1;
        sk_model_free(m);
    }
    if (!only || !strcmp(only, "cnn")) {
        struct sk_model *m = get_model(
            "cnn", "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10", dir,
            ep_cnn, tr);
        rc |= m ? bench("cnn", m, te, cnn_n, reps, suite, torch, dir, threads) : 1;
        sk_model_free(m);
    }
    if (n_curves) {
        char path[512];
        snprintf(path, sizeof path, "%s/attack_eps.png", dir);
        float eps[] = { 0, 0.02f, 0.05f, 0.1f, 0.2f };
        double acc[10];
        for (int s = 0; s < n_curves; s++) memcpy(acc + 5 * s, curves[s], sizeof curves[s]);
        if (sk_attack_plot_curve(path, "Fashion-MNIST, PGD-20, L\u221e", eps, 5, acc, n_curves, curve_names) == 0)
            fprintf(stderr, "bench_attack: accuracy-vs-eps plot written to %s\n", path);
    }
    sk_dataset_free(tr);
    sk_dataset_free(te);
    return rc;
}
