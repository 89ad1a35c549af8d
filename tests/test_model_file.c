/* A model file means one thing everywhere: the preprocessing, class
 * selection and data split a file records are applied by every command and
 * library call, eps and boxes are in the data's own units, and data or flags
 * that contradict the file are an error. Each reproducer of an outside audit
 * is a check here, on Fashion-MNIST (Debian's dataset-fashion-mnist, which
 * scripts/install-deps installs: its absence fails the test) and on small
 * tables written by the test. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "skeptic/skeptic.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"
#include "skeptic/certify.h"
#include "testutil.h"

static struct sk_dataset *fashion(const char *split, int n)
{
    struct sk_dataset *d = sk_data_open("fashion-mnist", split, NULL);
    if (!d) {
        fprintf(stderr, "fashion-mnist is required (scripts/install-deps installs it): %s\n", sk_last_error());
        exit(1);
    }
    int *idx = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    struct sk_dataset *s = sk_dataset_subset(d, idx, n);
    s->n_classes = d->n_classes;
    free(idx);
    sk_dataset_free(d);
    return s;
}

/* ---- the same network with its standardisation stored, and folded into
 * the first dense layer's weights: every figure must agree ---- */

/* W' = W diag(scale), b' = b - W (scale * shift): the first layer of the
 * folded network computes W ((x - shift) * scale) + b. */
static struct sk_model *fold(const struct sk_model *m)
{
    struct sk_model *f = sk_model_clone(m);
    sk_model_set_preprocess(f, NULL);
    const struct sk_layer *L = &m->layers[0];
    int O = L->units, D = L->in[0];
    const float *W = m->params + L->w_off, *b = m->params + L->b_off;
    float *W2 = f->params + L->w_off, *b2 = f->params + L->b_off;
    for (int o = 0; o < O; o++) {
        double acc = b[o];
        for (int j = 0; j < D; j++) {
            W2[(size_t)o * D + j] = W[(size_t)o * D + j] * m->prep->scale[j];
            acc -= (double)W[(size_t)o * D + j] * m->prep->scale[j] * m->prep->shift[j];
        }
        b2[o] = (float)acc;
    }
    return f;
}

struct figures {
    double clean, pgd, suite, ibp, auroc;
};

static struct figures judge(struct sk_model *m, const struct sk_dataset *te, const float *ood, int n_ood)
{
    struct figures r;
    double acc;
    sk_model_evaluate(m, te->x, te->y, te->n, &acc, NULL);
    r.clean = acc;
    struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
    struct sk_attack_config pc = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, 0.03f);
    pc.steps = 10;
    struct sk_attack_result *a = sk_attack_evaluate(c, &pc, te->x, te->y, te->n);
    r.pgd = a ? a->robust_acc : -1;
    sk_attack_result_free(a);
    struct sk_attack_config sc = sk_attack_defaults(SK_ATTACK_SUITE, SK_NORM_LINF, 0.03f);
    sc.steps = 20;
    sc.queries = 100;
    sc.n_target_classes = 2;
    a = sk_attack_evaluate(c, &sc, te->x, te->y, 100);
    r.suite = a ? a->robust_acc : -1;
    sk_attack_result_free(a);
    sk_classifier_free(c);
    unsigned char *cert = malloc((size_t)te->n);
    struct sk_certify_report rep;
    r.ibp = sk_certify(m, SK_CERTIFY_IBP, te->x, te->y, te->n, 0.004f, 0, 1, cert, &rep) ? -1 : rep.certified_acc;
    free(cert);
    int K = m->n_classes;
    float *lp = malloc(sizeof(float) * (size_t)(te->n > n_ood ? te->n : n_ood) * K);
    float *s_in = malloc(sizeof(float) * (size_t)te->n), *s_out = malloc(sizeof(float) * (size_t)n_ood);
    sk_model_log_probs(m, te->x, te->n, lp);
    for (int i = 0; i < te->n; i++) {
        float mx = lp[(size_t)i * K];
        for (int k = 1; k < K; k++) mx = fmaxf(mx, lp[(size_t)i * K + k]);
        s_in[i] = 1.0f - expf(mx);
    }
    sk_model_log_probs(m, ood, n_ood, lp);
    for (int i = 0; i < n_ood; i++) {
        float mx = lp[(size_t)i * K];
        for (int k = 1; k < K; k++) mx = fmaxf(mx, lp[(size_t)i * K + k]);
        s_out[i] = 1.0f - expf(mx);
    }
    r.auroc = sk_metric_auroc(s_out, n_ood, s_in, te->n);
    free(lp);
    free(s_in);
    free(s_out);
    return r;
}

static void test_folded_equals_stored(void)
{
    struct sk_dataset *tr = fashion("train", 3000), *te = fashion("test", 300);
    struct sk_model *m = sk_model_from_spec("mlp:784-32-10:relu");
    struct sk_preprocess *p = sk_preprocess_fit(tr, SK_PREP_STANDARDIZE);
    CHECK(sk_model_set_preprocess(m, p) == 0, "attach the standardisation: %s", sk_last_error());
    sk_preprocess_free(p);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 2;
    cfg.batch = 64;
    cfg.seed = 3;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    CHECK(sk_train(m, &cfg, tr->x, tr->y, tr->n) == 0, "train with the transform: %s", sk_last_error());
    /* OOD: the test images upside down, a shift the standardisation does not undo */
    float *ood = malloc(sizeof(float) * (size_t)te->n * 784);
    for (int i = 0; i < te->n; i++)
        for (int q = 0; q < 784; q++) ood[(size_t)i * 784 + q] = te->x[(size_t)i * 784 + 783 - q];
    struct sk_model *f = fold(m);
    struct figures a = judge(m, te, ood, te->n), b = judge(f, te, ood, te->n);
    printf("stored: clean %.4f pgd %.4f suite %.4f ibp %.4f auroc %.4f\n", a.clean, a.pgd, a.suite, a.ibp, a.auroc);
    printf("folded: clean %.4f pgd %.4f suite %.4f ibp %.4f auroc %.4f\n", b.clean, b.pgd, b.suite, b.ibp, b.auroc);
    CHECK(a.clean > 0.7 && a.clean == b.clean, "clean accuracy %g (stored) vs %g (folded)", a.clean, b.clean);
    CHECK(a.pgd >= 0 && a.pgd < a.clean && a.pgd == b.pgd, "PGD robust accuracy %g vs %g", a.pgd, b.pgd);
    CHECK(a.suite >= 0 && a.suite <= a.pgd + 0.05 && a.suite == b.suite, "suite robust accuracy %g vs %g", a.suite, b.suite);
    CHECK(a.ibp > 0 && a.ibp == b.ibp, "IBP certified accuracy %g vs %g (eps 0.004)", a.ibp, b.ibp);
    CHECK(a.auroc > 0.5 && fabs(a.auroc - b.auroc) < 1e-3, "OOD AUROC %g vs %g", a.auroc, b.auroc);
    /* CROWN and Lipschitz bounds through the transform equal the folded network's */
    float mlo_a[10 * 20], mlo_b[10 * 20];
    sk_certify_margins(m, SK_CERTIFY_CROWN, te->x, te->y, 20, 0.004f, 0, 1, mlo_a);
    sk_certify_margins(f, SK_CERTIFY_CROWN, te->x, te->y, 20, 0.004f, 0, 1, mlo_b);
    double worst = 0;
    for (int i = 0; i < 200; i++) worst = fmax(worst, fabs(mlo_a[i] - mlo_b[i]) / (1 + fabs(mlo_b[i])));
    CHECK(worst < 1e-3, "CROWN margins through the transform = folded network's (worst rel. difference %g)", worst);
    double ga, gb, pa, pb;
    sk_certify_lipschitz_bound(m, 100, 1, NULL, &pa, &ga, NULL);
    sk_certify_lipschitz_bound(f, 100, 1, NULL, &pb, &gb, NULL);
    CHECK(ga >= gb * 0.999, "the Lipschitz bound with the transform (%g) covers the folded network's (%g)", ga, gb);
    free(ood);
    sk_model_free(m);
    sk_model_free(f);
    sk_dataset_free(tr);
    sk_dataset_free(te);
}

/* ---- the command line ---- */

static double run_num(const char *cmd, const char *key)
{
    int rc = sk_cli_run(cmd);
    cJSON *o = sk_cli_json();
    double v = rc == 0 ? sk_json_num(o, key) : -1;
    if (rc) fprintf(stderr, "command failed (%d): skeptic %s\n%s\n", rc, cmd, sk_cli_err);
    cJSON_Delete(o);
    return v;
}

/* .npy float32 body of a file written by skeptic (header parsed minimally) */
static float *npy_floats(const char *name, size_t *n)
{
    size_t len;
    unsigned char *b = sk_test_file_bytes(name, &len);
    if (!b || len < 10) {
        free(b);
        return NULL;
    }
    size_t hl = (size_t)b[8] | ((size_t)b[9] << 8), off = 10 + hl;
    *n = (len - off) / 4;
    float *f = malloc(len - off + 4);
    memcpy(f, b + off, len - off);
    free(b);
    return f;
}

static void test_eps_in_pixels(void)
{
    const char *T = "train --data fashion-mnist --n 3000 --arch mlp:784-64-10:relu --epochs 2 --seed 1";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --out raw.st", T);
    CHECK(sk_cli_run(cmd) == 0, "train raw: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "%s --normalize standardize --out std.st", T);
    CHECK(sk_cli_run(cmd) == 0, "train standardised: %s", sk_cli_err);
    const char *A = "attack --data fashion-mnist --n 300 --attack pgd --eps 0.1 --steps 20 --json";
    snprintf(cmd, sizeof cmd, "%s --model raw.st", A);
    double raw = run_num(cmd, "robust_accuracy");
    snprintf(cmd, sizeof cmd, "%s --model std.st --save-adv adv.npy", A);
    int rc = sk_cli_run(cmd);
    cJSON *o = sk_cli_json(), *box = o ? cJSON_GetObjectItem(o, "box") : NULL;
    double stdr = rc == 0 ? sk_json_num(o, "robust_accuracy") : -1;
    CHECK(box && cJSON_GetArraySize(box) == 2 && cJSON_GetArrayItem(box, 0)->valuedouble == 0 &&
              cJSON_GetArrayItem(box, 1)->valuedouble == 1,
          "the box of a standardised image model is the pixel range [0,1]: %s", sk_cli_out);
    cJSON_Delete(o);
    printf("PGD-20 at eps 0.1 (pixels): raw model %.3f, standardised model %.3f\n", raw, stdr);
    /* the audit's figures: 6.9% raw, 34.7% when eps was taken in standardised units */
    CHECK(raw >= 0 && raw < 0.2 && stdr >= 0 && stdr < 0.2, "both models fall at eps 0.1 in pixels (raw %g, std %g)",
          raw, stdr);
    size_t n = 0;
    float *adv = npy_floats("adv.npy", &n);
    struct sk_dataset *te = fashion("test", 300);
    CHECK(adv && n == (size_t)300 * 784, "saved %zu adversarial values", n);
    double lo = 1, hi = 0, dist = 0;
    for (size_t i = 0; adv && i < n; i++) {
        lo = fmin(lo, adv[i]);
        hi = fmax(hi, adv[i]);
        dist = fmax(dist, fabs(adv[i] - te->x[i]));
    }
    CHECK(lo >= 0 && hi <= 1 && dist <= 0.1 + 1e-6, "saved examples in [%g, %g], within %g of the raw images", lo, hi, dist);
    free(adv);
    sk_dataset_free(te);
    /* certify takes the pixel box too */
    rc = sk_cli_run("certify --model std.st --data fashion-mnist --n 50 --eps 0.001 --method ibp --json");
    CHECK(rc == 0 && strstr(sk_cli_out, "\"box\":[0,1]") && !strstr(sk_cli_err, "no input box"),
          "certify on a standardised model uses the pixel box: %s %s", sk_cli_out, sk_cli_err);
}

static void test_adv_training_standardised(void)
{
    const char *T = "train --data fashion-mnist --n 3000 --arch mlp:784-64-10:relu --epochs 3 --seed 2 --adv pgd "
                    "--adv-eps 0.1 --adv-steps 3";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --out advraw.st", T);
    CHECK(sk_cli_run(cmd) == 0, "adversarial training raw: %s", sk_cli_err);
    snprintf(cmd, sizeof cmd, "%s --normalize standardize --out advstd.st", T);
    CHECK(sk_cli_run(cmd) == 0, "adversarial training standardised (eps in pixels): %s", sk_cli_err);
    const char *A = "attack --data fashion-mnist --n 300 --attack pgd --eps 0.1 --steps 20 --json";
    snprintf(cmd, sizeof cmd, "%s --model advraw.st", A);
    double a = run_num(cmd, "robust_accuracy");
    snprintf(cmd, sizeof cmd, "%s --model advstd.st", A);
    double b = run_num(cmd, "robust_accuracy");
    snprintf(cmd, sizeof cmd, "%s --model std.st", A);
    double plain = run_num(cmd, "robust_accuracy");
    printf("PGD-20 at eps 0.1 after PGD training: raw %.3f, standardised %.3f (standardised, not adversarial: %.3f)\n",
           a, b, plain);
    CHECK(a > 0.2 && b > 0.2 && fabs(a - b) < 0.1 && b > plain + 0.15,
          "PGD training at eps 0.1 makes both robust, alike (raw %g, standardised %g, plain %g)", a, b, plain);
}

static void test_ood_preprocessed(void)
{
    /* eval --ood: the OOD rows go through the model's preprocessing too; the
     * reference is the library on rows standardised by hand and a model
     * without the transform */
    struct sk_model *m = sk_model_load(sk_test_path("std.st"), NULL, NULL);
    CHECK(m && m->prep && m->prep->kind == SK_PREP_STANDARDIZE, "the file's standardisation is the model's transform");
    if (!m) return;
    /* OOD set: inverted images written as .npy (a file the CLI reads raw) */
    struct sk_dataset *te = fashion("test", 500);
    float *inv = malloc(sizeof(float) * 500 * 784);
    for (size_t i = 0; i < 500 * 784; i++) inv[i] = 1.0f - te->x[i];
    int64_t shp[2] = { 500, 784 };
    sk_npy_write_f32(sk_test_path("inv.npy"), inv, 2, shp);
    float zeros[500] = { 0 };
    int64_t lshp[1] = { 500 };
    sk_npy_write_f32(sk_test_path("inv_labels.npy"), zeros, 1, lshp);
    int rc = sk_cli_run("eval --model std.st --data fashion-mnist --n 500 --ood inv.npy --json");
    cJSON *o = sk_cli_json(), *od = o ? cJSON_GetObjectItem(o, "ood") : NULL;
    cJSON *mp = od ? cJSON_GetObjectItem(od, "maxprob") : NULL;
    double cli = mp ? sk_json_num(mp, "auroc") : -1;
    cJSON_Delete(o);
    /* by hand: standardise both sets, run the network without the transform */
    struct sk_model *bare = sk_model_clone(m);
    sk_model_set_preprocess(bare, NULL);
    struct sk_dataset tin = { .n = 500, .dim = 784, .x = te->x }, tout = { .n = 500, .dim = 784, .x = inv };
    sk_preprocess_apply(m->prep, &tin);
    sk_preprocess_apply(m->prep, &tout);
    struct sk_posterior *p = sk_bayes_new(bare, SK_BAYES_DETERMINISTIC);
    struct sk_bayes_report r = { 0 };
    sk_bayes_report(p, te->x, te->y, 500, inv, 500, 1, 0, &r);
    double ref = r.ood[SK_SCORE_MAXPROB].auroc;
    printf("OOD AUROC (max prob), inverted images: eval %.6f, by hand %.6f\n", cli, ref);
    CHECK(rc == 0 && fabs(cli - ref) < 1e-6, "eval --ood standardises the OOD rows (eval %g, reference %g): %s", cli,
          ref, sk_cli_err);
    sk_bayes_report_free(&r);
    sk_bayes_free(p);
    free(inv);
    sk_dataset_free(te);
    sk_model_free(m);
}

/* a 2-class table whose split matters: rows of two Gaussian classes */
static void write_table(const char *name, int n)
{
    FILE *f = fopen(sk_test_path(name), "w");
    struct sk_rng r = sk_rng_new(11);
    for (int i = 0; i < n; i++) {
        int y = i % 2;
        for (int j = 0; j < 6; j++) fprintf(f, "%.5f,", (y ? 0.6 : -0.6) * (j < 3) + 100.0 * j + sk_rng_normal(&r));
        fprintf(f, "%d\n", y);
    }
    fclose(f);
}

static void test_split_travels(void)
{
    write_table("t.csv", 400);
    const struct {
        const char *method, *args;
    } kinds[] = {
        { "ensemble", "--method ensemble --members 2 --arch mlp:6-16-2:relu --epochs 5 --lr 0.01" },
        { "vi", "--method vi --arch mlp:6-16-2:relu --epochs 5 --lr 0.01 --kl-weight 0.1" },
        { "det", "--arch mlp:6-16-2:relu --epochs 5 --lr 0.01" },
    };
    for (int k = 0; k < 3; k++) {
        char cmd[1024], out[64];
        snprintf(out, sizeof out, "split-%s.st", kinds[k].method);
        snprintf(cmd, sizeof cmd, "train --data t.csv --header no --data-seed 7 --test-fraction 0.25 --normalize standardize %s --out %s",
                 kinds[k].args, out);
        CHECK(sk_cli_run(cmd) == 0, "train %s on a CSV split by seed 7: %s", kinds[k].method, sk_cli_err);
        snprintf(cmd, sizeof cmd, "eval --model %s --data t.csv --header no --samples 5 --json", out);
        double n_impl = run_num(cmd, "n"), acc_impl = run_num(cmd, "accuracy");
        snprintf(cmd, sizeof cmd, "eval --model %s --data t.csv --header no --data-seed 7 --test-fraction 0.25 --samples 5 --json", out);
        double acc_expl = run_num(cmd, "accuracy");
        CHECK(n_impl == 100 && acc_impl == acc_expl && acc_impl > 0.6,
              "%s: eval uses the recorded split (%g rows, accuracy %g; with the split given: %g)", kinds[k].method, n_impl,
              acc_impl, acc_expl);
        snprintf(cmd, sizeof cmd, "eval --model %s --data t.csv --header no --data-seed 1 --samples 5", out);
        int rc = sk_cli_run(cmd);
        CHECK(rc != 0 && strstr(sk_cli_err, "data seed 7") && strstr(sk_cli_err, "data seed 1"),
              "%s: another data seed is refused, naming both: %s", kinds[k].method, sk_cli_err);
        snprintf(cmd, sizeof cmd, "eval --model %s --data t.csv --header no --test-fraction 0.5", out);
        CHECK(sk_cli_run(cmd) != 0 && strstr(sk_cli_err, "0.25"), "%s: another test fraction is refused: %s",
              kinds[k].method, sk_cli_err);
    }
}

static void test_classes_travel(void)
{
    CHECK(sk_cli_run("train --method ensemble --members 2 --data fashion-mnist --n 2000 --classes 6,0 "
                     "--arch mlp:784-32-2:relu --epochs 2 --out ens60.st") == 0,
          "ensemble on classes 6,0: %s", sk_cli_err);
    double acc = run_num("eval --model ens60.st --data fashion-mnist --samples 2 --json", "accuracy");
    double n = run_num("eval --model ens60.st --data fashion-mnist --samples 2 --json", "n");
    CHECK(acc > 0.7 && n == 2000, "the ensemble is judged on its two classes (accuracy %g on %g rows; the audit: 0.1062 "
          "over all 10 classes)", acc, n);
    int rc = sk_cli_run("eval --model ens60.st --data fashion-mnist --classes 0,6");
    CHECK(rc != 0 && strstr(sk_cli_err, "6,0") && strstr(sk_cli_err, "0,6"), "--classes 0,6 on a 6,0 model: %s",
          sk_cli_err);
    rc = sk_cli_run("eval --model ens60.st --data fashion-mnist --classes 6,0 --samples 2 --json");
    CHECK(rc == 0, "the same classes as recorded are fine: %s", sk_cli_err);
    /* a deterministic model too */
    CHECK(sk_cli_run("train --data fashion-mnist --n 2000 --classes 6,0 --arch mlp:784-32-2:relu --epochs 2 --out det60.st") == 0,
          "train on classes 6,0: %s", sk_cli_err);
    rc = sk_cli_run("attack --model det60.st --data fashion-mnist --classes 0,6 --eps 0.01 --n 20");
    CHECK(rc != 0 && strstr(sk_cli_err, "6,0"), "attack --classes 0,6 on a 6,0 model: %s", sk_cli_err);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = sk_test_file_bytes(from, &n);
    if (b) sk_test_write(sk_test_path(to), b, n);
    free(b);
}

static void test_compare_dir(void)
{
    /* compare --dir: a loaded file keeps its preprocessing and is judged like eval judges it */
    mkdir(sk_test_path("cmp"), 0777);
    copy_file("std.st", "cmp/deterministic.safetensors");
    double ev = run_num("eval --model std.st --data fashion-mnist --n 500 --json", "accuracy");
    int rc = sk_cli_run("compare --dir cmp --methods deterministic --n-adv 0 --ood none --data fashion-mnist --n 2000 "
                        "--n-test 500 --json");
    cJSON *o = sk_cli_json(), *ms = o ? cJSON_GetObjectItem(o, "methods") : NULL;
    double cmp = ms && cJSON_GetArraySize(ms) == 1 ? sk_json_num(cJSON_GetArrayItem(ms, 0), "accuracy") : -1;
    cJSON_Delete(o);
    printf("standardised model loaded by compare --dir: accuracy %.4f; eval: %.4f\n", cmp, ev);
    CHECK(rc == 0 && ev > 0.7 && cmp == ev, "compare --dir applies the file's preprocessing (compare %g, eval %g): %s",
          cmp, ev, sk_cli_err);
    /* a 2-class file judged on 10-class data: an error, not an out-of-bounds read */
    mkdir(sk_test_path("cmp2"), 0777);
    copy_file("det60.st", "cmp2/deterministic.safetensors");
    rc = sk_cli_run("compare --dir cmp2 --methods deterministic --n-adv 0 --ood none --data fashion-mnist --n 2000 "
                    "--n-test 100");
    CHECK(rc == 1 && strstr(sk_cli_err, "6,0"), "compare refuses a file of other classes: %s", sk_cli_err);
    rc = sk_cli_run("compare --dir cmp2 --methods deterministic --n-adv 100 --ood none --data fashion-mnist --n 2000 "
                    "--classes 6,0 --n-test 300 --json");
    o = sk_cli_json();
    ms = o ? cJSON_GetObjectItem(o, "methods") : NULL;
    cJSON *row = ms ? cJSON_GetArrayItem(ms, 0) : NULL;
    double acc = row ? sk_json_num(row, "accuracy") : -1, dn = row ? sk_json_num(row, "adv_detection_n") : -1;
    cJSON_Delete(o);
    /* the detection AUROC is over the attacked rows the model got right before the attack */
    CHECK(rc == 0 && acc > 0.7 && dn > 50 && dn < 100, "with its classes it runs (accuracy %g); adversarial detection "
          "over %g of the 100 attacked rows: %s", acc, dn, sk_cli_err);
}

static void test_flags_do_what_they_say(void)
{
    /* eval --predictions / --logits with a posterior file */
    int rc = sk_cli_run("eval --model ens60.st --data fashion-mnist --samples 2 --predictions p.npy --json");
    size_t n = 0;
    float *lp = npy_floats("p.npy", &n);
    bool norm = lp && n == 2000 * 2;
    for (size_t i = 0; norm && i < 2000; i++) norm = fabs(exp(lp[2 * i]) + exp(lp[2 * i + 1]) - 1) < 1e-4;
    CHECK(rc == 0 && norm, "eval --predictions of an ensemble writes 2000 x 2 log-probabilities (%zu values)", n);
    free(lp);
    rc = sk_cli_run("eval --model ens60.st --data fashion-mnist --samples 2 --logits z.npy");
    CHECK(rc == 2 && strstr(sk_cli_err, "--logits") && strstr(sk_cli_err, "--predictions"),
          "eval --logits of an ensemble is refused, pointing to --predictions: %s", sk_cli_err);
    rc = sk_cli_run("eval --model std.st --data fashion-mnist --n 100 --ood inv.npy --logits z.npy --predictions q.npy");
    float *z = npy_floats("z.npy", &n), *q = NULL;
    size_t nq = 0;
    q = npy_floats("q.npy", &nq);
    CHECK(rc == 0 && z && n == 1000 && q && nq == 1000, "eval --ood --logits --predictions write both files (%zu, %zu)",
          n, nq);
    free(z);
    free(q);
    /* attack on a posterior file: its predictive (the ensemble's members, its temperature), as eval judges it */
    double ev = run_num("eval --model ens60.st --data fashion-mnist --samples 2 --json", "accuracy");
    rc = sk_cli_run("attack --model ens60.st --data fashion-mnist --n 2000 --attack fgsm --eps 0.01 --json");
    cJSON *o = sk_cli_json();
    double at = sk_json_num(o, "clean_accuracy");
    cJSON_Delete(o);
    CHECK(rc == 0 && at == ev && strstr(sk_cli_err, "ensemble posterior"),
          "attack judges an ensemble file by its predictive (clean %g, eval %g): %s", at, ev, sk_cli_err);
    /* data that were preprocessed already are refused, naming the model's own preprocessing */
    struct sk_dataset *te = fashion("test", 300);
    struct sk_model *m = sk_model_load(sk_test_path("std.st"), NULL, NULL);
    struct sk_dataset tt = { .n = 300, .dim = 784, .x = te->x };
    sk_preprocess_apply(m->prep, &tt);
    int64_t shp[2] = { 300, 784 }, lshp[1] = { 300 };
    float zeros[300] = { 0 };
    sk_npy_write_f32(sk_test_path("pre.npy"), te->x, 2, shp);
    sk_npy_write_f32(sk_test_path("pre_labels.npy"), zeros, 1, lshp);
    rc = sk_cli_run("eval --model std.st --data pre.npy --split all");
    CHECK(rc == 1 && strstr(sk_cli_err, "preprocessed already") && strstr(sk_cli_err, "standardize"),
          "pre-standardised data are refused: %s", sk_cli_err);
    rc = sk_cli_run("eval --model std.st --data fashion-mnist --n 300");
    CHECK(rc == 0, "raw data are fine: %s", sk_cli_err);
    sk_model_free(m);
    sk_dataset_free(te);
}

/* The input box of tabular data is each feature's training range: a table
 * whose feature 0 lies in [0,1] and feature 1 in [0,1000]. */
static void test_box_per_feature(void)
{
    FILE *f = fopen(sk_test_path("pf.csv"), "w");
    struct sk_rng r = sk_rng_new(5);
    for (int i = 0; i < 400; i++) {
        float a = sk_rng_uniform(&r), b = 1000 * sk_rng_uniform(&r);
        fprintf(f, "%.5f,%.3f,%d\n", a, b, a + b / 1000 > 1);
    }
    fclose(f);
    CHECK(sk_cli_run("train --data pf.csv --header no --arch mlp:2-16-2:relu --epochs 20 --lr 0.01 --normalize "
                     "standardize --out pf.st") == 0,
          "train on the two-range table: %s", sk_cli_err);
    struct sk_model *m = sk_model_load(sk_test_path("pf.st"), NULL, NULL);
    CHECK(m && m->in_lo && m->in_lo[0] >= 0 && m->in_hi[0] <= 1 && m->in_hi[1] > 900,
          "the file records the training range per feature");
    if (!m || !m->in_lo) return;
    /* attack: every example inside its feature's range (widened to the test rows' own values) */
    int rc = sk_cli_run("attack --model pf.st --data pf.csv --header no --attack pgd --eps 0.5 --save-adv pfa.npy --json");
    cJSON *o = sk_cli_json(), *blo = o ? cJSON_GetObjectItem(o, "box_lo") : NULL;
    cJSON *bhi = o ? cJSON_GetObjectItem(o, "box_hi") : NULL;
    float lo[2] = { NAN, NAN }, hi[2] = { NAN, NAN };
    for (int j = 0; j < 2 && blo && bhi && cJSON_GetArraySize(blo) == 2 && cJSON_GetArraySize(bhi) == 2; j++) {
        lo[j] = (float)cJSON_GetArrayItem(blo, j)->valuedouble;
        hi[j] = (float)cJSON_GetArrayItem(bhi, j)->valuedouble;
    }
    cJSON_Delete(o);
    CHECK(rc == 0 && strstr(sk_cli_err, "per feature") && lo[0] <= m->in_lo[0] && hi[0] >= m->in_hi[0] &&
              lo[0] > -0.05f && hi[0] < 1.05f && lo[1] <= m->in_lo[1] && hi[1] >= m->in_hi[1],
          "the attack's box is the training range per feature: [%g, %g] x [%g, %g] (%s)", lo[0], hi[0], lo[1], hi[1],
          sk_cli_err);
    size_t n = 0;
    float *adv = npy_floats("pfa.npy", &n);
    int outside = 0;
    for (size_t i = 0; adv && i < n; i++) outside += !(adv[i] >= lo[i % 2] && adv[i] <= hi[i % 2]);
    CHECK(adv && n == 160 && outside == 0, "PGD at eps 0.5 keeps all %zu values in their feature's box (%d outside)", n,
          outside);
    free(adv);
    /* Sparse-RS sets a feature to a corner of its box: inside feature 0's range per feature, and
     * with --clip-min/--clip-max (one box for both features) out to 0 or 1000 */
    rc = sk_cli_run("attack --model pf.st --data pf.csv --header no --attack sparse --eps 1 --save-adv pfp.npy");
    adv = npy_floats("pfp.npy", &n);
    outside = 0;
    for (size_t i = 0; adv && i < n; i++) outside += !(adv[i] >= lo[i % 2] && adv[i] <= hi[i % 2]);
    CHECK(rc == 0 && adv && n == 160 && outside == 0, "Sparse-RS keeps every value in its feature's box (%d outside)",
          outside);
    free(adv);
    rc = sk_cli_run("attack --model pf.st --data pf.csv --header no --attack sparse --eps 1 --clip-min 0 --clip-max 1000 "
                    "--save-adv pfs.npy --json");
    o = sk_cli_json();
    cJSON *box = o ? cJSON_GetObjectItem(o, "box") : NULL;
    bool scalar = box && cJSON_GetArraySize(box) == 2 && cJSON_GetArrayItem(box, 1)->valuedouble == 1000 &&
                  !cJSON_GetObjectItem(o, "box_lo");
    cJSON_Delete(o);
    adv = npy_floats("pfs.npy", &n);
    int left = 0;
    for (size_t i = 0; adv && i < n; i += 2) left += adv[i] < lo[0] - 0.01f || adv[i] > hi[0] + 0.01f;
    CHECK(rc == 0 && scalar && left > 0 && !strstr(sk_cli_err, "per feature"), "the scalar box [0,1000] is used when given (%d examples leave feature 0's range)",
          left);
    free(adv);
    /* certify: the per-feature box is the smaller threat set */
    double cf = run_num("certify --model pf.st --data pf.csv --header no --eps 0.5 --method ibp --json", "certified_accuracy");
    double cs = run_num("certify --model pf.st --data pf.csv --header no --eps 0.5 --method ibp --clip-min 0 --clip-max "
                        "1000 --json", "certified_accuracy");
    CHECK(cf >= 0 && cs >= 0 && cf >= cs, "IBP certified accuracy in the per-feature box %g >= in the overall box %g", cf, cs);
    /* the library: equal per-feature bounds are the scalar box, number for number */
    float x[8] = { 0.2f, 100, 0.9f, 950, 0.5f, 480, 0.02f, 3 }, ml_a[8], ml_b[8];
    int y[4] = { 0, 1, 0, 0 };
    float el[2] = { 0, 0 }, eh[2] = { 1000, 1000 };
    struct sk_certify_domain eq = { 0, 0, el, eh }, pf = { 0, 0, m->in_lo, m->in_hi };
    struct sk_certify_report ra, rb, rp;
    sk_certify(m, SK_CERTIFY_IBP, x, y, 4, 0.5f, 0, 1000, NULL, &ra);
    sk_certify_box(m, SK_CERTIFY_IBP, x, y, 4, 0.5f, &eq, NULL, &rb);
    sk_certify_box(m, SK_CERTIFY_IBP, x, y, 4, 0.5f, &pf, NULL, &rp);
    sk_certify_margins(m, SK_CERTIFY_CROWN, x, y, 4, 0.5f, 0, 1000, ml_a);
    sk_certify_margins_box(m, SK_CERTIFY_CROWN, x, y, 4, 0.5f, &eq, ml_b);
    CHECK(ra.mean_margin_lo == rb.mean_margin_lo && !memcmp(ml_a, ml_b, sizeof ml_a) &&
              rp.mean_margin_lo >= ra.mean_margin_lo,
          "per-feature [0,1000] bounds = the scalar box (%g, %g); the training range is tighter (%g)",
          ra.mean_margin_lo, rb.mean_margin_lo, rp.mean_margin_lo);
    sk_model_free(m);
    /* adversarial training bounds its attack by the training split's range */
    rc = sk_cli_run("train --data pf.csv --header no --arch mlp:2-16-2:relu --epochs 2 --lr 0.01 --normalize standardize "
                    "--adv pgd --adv-eps 0.5 --out pfadv.st");
    CHECK(rc == 0 && strstr(sk_cli_err, "per feature") && strstr(sk_cli_err, "training split"),
          "train --adv on a table uses the per-feature box: %s", sk_cli_err);
    /* images keep the pixel box [0,1] */
    rc = sk_cli_run("attack --model std.st --data fashion-mnist --n 20 --attack fgsm --eps 0.01 --json");
    o = sk_cli_json();
    box = o ? cJSON_GetObjectItem(o, "box") : NULL;
    CHECK(rc == 0 && box && cJSON_GetArrayItem(box, 0)->valuedouble == 0 && cJSON_GetArrayItem(box, 1)->valuedouble == 1 &&
              !cJSON_GetObjectItem(o, "box_lo") && !strstr(sk_cli_err, "per feature"),
          "images: the box stays [0,1]: %s", sk_cli_out);
    cJSON_Delete(o);
}

int main(void)
{
    test_folded_equals_stored();
    test_eps_in_pixels();
    test_adv_training_standardised();
    test_ood_preprocessed();
    test_split_travels();
    test_classes_travel();
    test_compare_dir();
    test_flags_do_what_they_say();
    test_box_per_feature();
    return sk_test_finish("test_model_file");
}
