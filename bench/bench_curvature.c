/* bench_curvature — lambda_max by Lanczos on Fashion-MNIST training images,
 * skeptic's exact HVP against PyTorch's double-backward HVP in the same run,
 * as JSON lines.
 *
 *   bench_curvature [--n N] [--steps S] [--chunk C] [--keep-mb M] [--threads T] [--dir DIR]
 *                   [--only mlp|cnn] [--torch-steps S] [--reps R] [--no-torch] [--recompute]
 *
 * Models: mlp:784-512-512-10:relu (669,706 parameters) and the CNN of the
 * benchmarks (cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-
 * flatten-dense128-relu-dense10, 421,642 parameters), loaded from
 * DIR/NAME.safetensors when there, else trained for one epoch on the N rows
 * here (Adam 1e-3, batch 128, seed 1) and saved there (default
 * /tmp/skeptic-bench-curvature), so that both sides see the same weights.
 * On the first N (10,000) training images, the mean cross-entropy in eval
 * mode, lambda_max by S (20) Lanczos steps with full reorthogonalisation from
 * the same kind of start (a Gaussian vector), no early stop:
 *
 *   skeptic            sk_curvature_loss_model (chunks of C = 1000 rows whose
 *                      recorded forwards are kept between products, up to M
 *                      MiB, default 1024) and sk_curvature_lanczos
 *   skeptic_recompute  (--recompute) the same with every forward recorded
 *                      afresh per product (keep_mb < 0): the PyTorch loop's work
 *   torch              bench/bench_curvature_torch.py: per chunk of C rows a
 *                      forward, torch.autograd.grad(create_graph=True), and
 *                      torch.autograd.grad(g . v) (PyHessian's
 *                      dataloader_hv_product), float32, the same Lanczos
 *
 * Each line gives seconds, seconds per HVP (the whole run over the steps)
 * and lambda_max; the sides run in turn R times (default 1) and the ratio
 * line compares the median seconds per HVP, torch / skeptic (target >= 3). --torch-steps runs fewer steps on the PyTorch side when its
 * products are too slow to run all (then lambda_max differs: fewer steps). OMP_WAIT_POLICY=PASSIVE for
 * both sides (spinning OpenMP threads wreck timings on a shared machine). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skeptic/skeptic.h"

#define MAXREPS 16

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

static struct sk_model *get_model(const char *name, const char *spec, const char *dir, const struct sk_dataset *tr,
                                  int n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    struct stat st;
    if (stat(path, &st) == 0) {
        struct sk_model *m = sk_model_load(path, NULL, NULL);
        if (m) {
            fprintf(stderr, "bench_curvature: loaded %s\n", path);
            return m;
        }
        fprintf(stderr, "bench_curvature: %s (retraining)\n", sk_last_error());
    }
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m || sk_model_init(m, SK_INIT_TORCH, 1)) return NULL;
    struct sk_train_config c = sk_train_defaults();
    c.epochs = 1;
    c.batch = 128;
    c.seed = 1;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = 1e-3f;
    double t0 = sk_now();
    if (sk_train(m, &c, tr->x, tr->y, n)) {
        fprintf(stderr, "bench_curvature: training %s: %s\n", name, sk_last_error());
        sk_model_free(m);
        return NULL;
    }
    fprintf(stderr, "bench_curvature: trained %s (1 epoch on %d rows, %.0f s)\n", name, n, sk_now() - t0);
    if (sk_model_save(m, path, NULL)) fprintf(stderr, "bench_curvature: saving %s: %s\n", path, sk_last_error());
    return m;
}

static int lmax(struct sk_model *m, const struct sk_dataset *tr, int n, int steps, int chunk, double keep_mb,
                double *lam, double *sec)
{
    struct sk_curvature_data_config dc = { .chunk = chunk, .keep_mb = keep_mb };
    double t0 = sk_now();
    struct sk_curvature_loss *L = sk_curvature_loss_model(m, tr->x, tr->y, n, &dc);
    if (!L) return SK_ENOMEM;
    struct sk_curvature_op H = sk_curvature_loss_op(L);
    struct sk_curvature_lanczos_config lc = { .k = 1, .max_steps = steps, .tol = 0, .seed = 1 };
    int rc = sk_curvature_lanczos(&H, &lc, lam, NULL, NULL, NULL);
    sk_curvature_loss_free(L);
    *sec = sk_now() - t0;
    return rc;
}

int main(int argc, char **argv)
{
    int n = 10000, steps = 20, chunk = 1000, threads = 2, tsteps = 0, reps = 1;
    double keep_mb = 1024;
    const char *dir = "/tmp/skeptic-bench-curvature", *only = NULL;
    bool torch = true, recompute = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-torch")) torch = false;
        else if (!strcmp(a, "--recompute")) recompute = true;
        else if (v && !strcmp(a, "--n")) n = atoi(argv[++i]);
        else if (v && !strcmp(a, "--steps")) steps = atoi(argv[++i]);
        else if (v && !strcmp(a, "--chunk")) chunk = atoi(argv[++i]);
        else if (v && !strcmp(a, "--keep-mb")) keep_mb = atof(argv[++i]);
        else if (v && !strcmp(a, "--torch-steps")) tsteps = atoi(argv[++i]);
        else if (v && !strcmp(a, "--reps")) reps = atoi(argv[++i]);
        else if (v && !strcmp(a, "--threads")) threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "--dir")) dir = argv[++i];
        else if (v && !strcmp(a, "--only")) only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_curvature [--n N] [--steps S] [--chunk C] [--keep-mb M] [--threads T] "
                            "[--dir DIR] [--only mlp|cnn] [--torch-steps S] [--reps R] [--no-torch] [--recompute]\n");
            return 2;
        }
    }
    if (tsteps <= 0) tsteps = steps;
    if (n < 1 || steps < 1 || chunk < 1 || reps < 1 || reps > MAXREPS) {
        fprintf(stderr, "bench_curvature: n, steps and chunk must be >= 1, reps in 1..%d\n", MAXREPS);
        return 2;
    }
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    sk_set_threads(threads);
    mkdir(dir, 0755);
    struct sk_dataset *tr = sk_data_open("fashion-mnist", "train", NULL);
    const char *data = "fashion-mnist";
    if (!tr) {
        fprintf(stderr, "bench_curvature: %s; synthetic images instead\n", sk_last_error());
        struct sk_data_options o = { .n = n, .k = 10, .dim = 784, .seed = 1 };
        tr = sk_data_open("blobs", "train", &o);
        data = "synthetic";
    }
    if (!tr) {
        fprintf(stderr, "bench_curvature: %s\n", sk_last_error());
        return 1;
    }
    if (n > tr->n) n = tr->n;
    static const char *names[2] = { "mlp", "cnn" };
    static const char *specs[2] = {
        "mlp:784-512-512-10:relu",
        "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10",
    };
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        if (only && strcmp(only, names[k])) continue;
        struct sk_model *m = get_model(names[k], specs[k], dir, tr, n);
        if (!m) {
            rc = 1;
            continue;
        }
        /* skeptic, skeptic recomputing, torch, in turn, reps times: the machine's
         * load drifts, so the sides alternate and the medians are compared */
        double sec[MAXREPS], sec_r[MAXREPS], tph[MAXREPS], lam = 0, lam_r = 0, tlam = 0;
        int ok = 0, ok_r = 0, ok_t = 0;
        for (int r = 0; r < reps; r++) {
            if (lmax(m, tr, n, steps, chunk, keep_mb, &lam, &sec[ok])) {
                fprintf(stderr, "bench_curvature: %s: %s\n", names[k], sk_last_error());
                rc = 1;
                break;
            }
            printf("{\"bench\":\"curvature\",\"impl\":\"skeptic\",\"model\":\"%s\",\"params\":%zu,\"data\":\"%s\","
                   "\"n\":%d,\"steps\":%d,\"chunk\":%d,\"keep_mb\":%g,\"threads\":%d,\"blas\":\"%s\",\"rep\":%d,"
                   "\"seconds\":%.3f,\"s_per_hvp\":%.4f,\"lambda_max\":%.6g}\n",
                   names[k], m->n_params, data, n, steps, chunk, keep_mb, threads, sk_blas_core(), r, sec[ok],
                   sec[ok] / steps, lam);
            ok++;
            fflush(stdout);
            if (recompute) {
                if (lmax(m, tr, n, steps, chunk, -1, &lam_r, &sec_r[ok_r])) {
                    fprintf(stderr, "bench_curvature: %s: %s\n", names[k], sk_last_error());
                    rc = 1;
                    break;
                }
                printf("{\"bench\":\"curvature\",\"impl\":\"skeptic_recompute\",\"model\":\"%s\",\"n\":%d,"
                       "\"steps\":%d,\"rep\":%d,\"seconds\":%.3f,\"s_per_hvp\":%.4f,\"lambda_max\":%.6g}\n",
                       names[k], n, steps, r, sec_r[ok_r], sec_r[ok_r] / steps, lam_r);
                ok_r++;
                fflush(stdout);
            }
            if (torch) {
                char cmd[2048], path[600], here[512];
                snprintf(here, sizeof here, "%s", __FILE__); /* the PyTorch script sits beside this file */
                char *slash = strrchr(here, '/');
                if (slash) *slash = 0;
                else snprintf(here, sizeof here, "bench");
                snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[k]);
                snprintf(cmd, sizeof cmd,
                         "%s %s/bench_curvature_torch.py --model %s --n %d --steps %d --chunk %d --threads %d",
                         access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3", here, path, n, tsteps,
                         chunk, threads);
                FILE *p = popen(cmd, "r");
                char line[4096];
                double t = 0;
                while (p && fgets(line, sizeof line, p)) {
                    fputs(line, stdout);
                    char *q = strstr(line, "\"lambda_max\":");
                    if (q) tlam = atof(q + 13);
                    q = strstr(line, "\"s_per_hvp\":");
                    if (q) t = atof(q + 12);
                }
                int st = p ? pclose(p) : -1;
                if (st != 0 || t <= 0) {
                    fprintf(stderr, "bench_curvature: the PyTorch side failed (%s)\n", cmd);
                    rc = 1;
                    break;
                }
                tph[ok_t++] = t;
                fflush(stdout);
            }
        }
        if (ok && ok_t) {
            double sk = median(sec, ok) / steps, skr = ok_r ? median(sec_r, ok_r) / steps : 0, th = median(tph, ok_t);
            char rr[32] = "null", ld[32] = "null"; /* not measured: recompute off, or fewer torch steps */
            if (skr > 0) snprintf(rr, sizeof rr, "%.2f", th / skr);
            if (tsteps == steps && tlam != 0) snprintf(ld, sizeof ld, "%.2e", (lam - tlam) / tlam);
            printf("{\"bench\":\"curvature\",\"what\":\"ratio\",\"model\":\"%s\",\"n\":%d,\"steps\":%d,"
                   "\"torch_steps\":%d,\"reps\":%d,\"skeptic_s_per_hvp\":%.4f,\"torch_s_per_hvp\":%.4f,"
                   "\"torch_over_skeptic\":%.2f,\"torch_over_skeptic_recompute\":%s,\"target\":3,"
                   "\"lambda_max_rel_diff\":%s}\n",
                   names[k], n, steps, tsteps, ok, sk, th, th / sk, rr, ld);
            fflush(stdout);
        }
        sk_model_free(m);
    }
    sk_dataset_free(tr);
    return rc;
}
