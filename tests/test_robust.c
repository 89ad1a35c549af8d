/* Robust training: on a small synthetic task PGD training raises PGD
 * accuracy over standard training; TRADES and fast FGSM (with its guard) do
 * too; IBP training raises certified accuracy; adversarial training of an
 * MC-dropout model with EOT runs and helps; the inner attack respects its
 * ball and beats random noise; bad configurations are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/certify.h"
#include "skeptic/robust.h"
#include "testutil.h"

static struct sk_dataset *tr, *te;
static const float EPS = 0.1f;

static void make_data(void)
{
    /* blobs squashed into (0,1): a box for the threat model, as with images */
    struct sk_dataset *all = sk_data_blobs(3600, 3, 20, 1.0f, 1);
    int idx[3600];
    for (int i = 0; i < 3600; i++) idx[i] = i;
    tr = sk_dataset_subset(all, idx, 3000);
    te = sk_dataset_subset(all, idx + 3000, 600);
    sk_dataset_free(all);
    struct sk_dataset *ds[2] = { tr, te };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ds[k]->n * ds[k]->dim; i++) ds[k]->x[i] = 1.0f / (1.0f + expf(-0.5f * ds[k]->x[i]));
}

struct result {
    double clean, pgd, cert, seconds;
    struct sk_adv_report rep;
};

static struct result run(const char *spec, struct sk_adv_config *adv, int epochs)
{
    struct result r = { 0 };
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = 64;
    cfg.seed = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 2e-3f;
    double t0 = sk_now();
    int rc = sk_adv_train(m, &cfg, adv, tr->x, tr->y, tr->n, &r.rep);
    r.seconds = sk_now() - t0;
    CHECK(rc == 0, "%s training: %s", sk_adv_kind_name(adv->kind), sk_last_error());
    sk_model_evaluate(m, te->x, te->y, te->n, &r.clean, NULL);
    struct sk_pgd_config pc = sk_pgd_defaults(EPS, 20);
    sk_pgd_accuracy(m, &pc, te->x, te->y, te->n, 9, &r.pgd, NULL);
    struct sk_cert_report cr;
    sk_certify(m, SK_CERT_IBP, te->x, te->y, te->n, EPS, 0, 1, NULL, &cr);
    r.cert = cr.certified_acc;
    fprintf(stderr, "  %-7s clean %.3f  pgd-20 %.3f  ibp-certified %.3f  (%.2fs)\n", sk_adv_kind_name(adv->kind),
            r.clean, r.pgd, r.cert, r.seconds);
    sk_model_free(m);
    return r;
}

static void test_training(void)
{
    const char *spec = "mlp:20-64-64-3:relu";
    struct sk_adv_config none = sk_adv_defaults(SK_ADV_NONE, EPS);
    struct result std = run(spec, &none, 12);
    CHECK(std.clean > 0.9, "standard training learns the task (clean %.3f)", std.clean);
    CHECK(std.pgd < std.clean - 0.1, "standard training is not robust: PGD-20 %.3f vs clean %.3f", std.pgd, std.clean);

    struct sk_adv_config pgd = sk_adv_defaults(SK_ADV_PGD, EPS);
    pgd.steps = 7;
    struct result rp = run(spec, &pgd, 12);
    CHECK(rp.pgd > std.pgd + 0.1, "PGD training raises PGD-20 accuracy: %.3f vs standard %.3f", rp.pgd, std.pgd);
    CHECK(rp.clean > 0.8, "PGD training keeps clean accuracy %.3f", rp.clean);

    struct sk_adv_config tra = sk_adv_defaults(SK_ADV_TRADES, EPS);
    tra.steps = 7;
    struct result rt = run(spec, &tra, 12);
    CHECK(rt.pgd > std.pgd + 0.1, "TRADES raises PGD-20 accuracy: %.3f vs standard %.3f", rt.pgd, std.pgd);

    struct sk_adv_config fg = sk_adv_defaults(SK_ADV_FGSM, EPS);
    fg.guard_n = 200;
    struct result rf = run(spec, &fg, 12);
    CHECK(rf.pgd > std.pgd + 0.1, "fast FGSM training raises PGD-20 accuracy: %.3f vs %.3f", rf.pgd, std.pgd);
    CHECK(rf.rep.best_epoch >= 0 && rf.rep.epochs == 12 && rf.rep.best_guard_acc > 0.3,
          "FGSM guard tracked PGD accuracy each epoch (best %.3f at epoch %d of %d)", rf.rep.best_guard_acc,
          rf.rep.best_epoch, rf.rep.epochs);
    for (int e = 0; e < 12; e++)
        CHECK(rf.rep.guard_acc[e] > 0, "FGSM guard accuracy recorded for epoch %d (%.3f)", e + 1, rf.rep.guard_acc[e]);

    struct sk_adv_config ibp = sk_adv_defaults(SK_ADV_IBP, EPS);
    ibp.ibp_warmup_epochs = 1;
    ibp.ibp_ramp_epochs = 6;
    struct result ri = run(spec, &ibp, 12);
    CHECK(ri.cert > std.cert + 0.2, "IBP training raises certified accuracy: %.3f vs standard %.3f", ri.cert, std.cert);
    CHECK(ri.cert <= ri.pgd + 1e-9 && ri.pgd <= ri.clean + 1e-9, "certified %.3f <= PGD-robust %.3f <= clean %.3f",
          ri.cert, ri.pgd, ri.clean);

    /* MC dropout with EOT: attacks average gradients over 4 masks */
    struct sk_adv_config eot = sk_adv_defaults(SK_ADV_PGD, EPS);
    eot.steps = 5;
    eot.eot = 4;
    struct sk_adv_config none2 = none;
    struct result sd = run("mlp:20-64-64-3:relu:dropout0.2", &none2, 8);
    struct result rd = run("mlp:20-64-64-3:relu:dropout0.2", &eot, 8);
    CHECK(rd.pgd > sd.pgd + 0.1, "EOT adversarial training of an MC-dropout model raises PGD-20 accuracy: %.3f vs %.3f",
          rd.pgd, sd.pgd);
}

/* The inner attack: inside the ball and the box, stronger than noise,
 * reproducible; EOT runs in MC mode. */
static void test_attack(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:20-32-3:relu:dropout0.3");
    sk_model_init(m, SK_INIT_HE_UNIFORM, 1);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    sk_train(m, &cfg, tr->x, tr->y, tr->n);
    int N = 300, D = 20;
    float *xa = malloc(sizeof(float) * N * D), *xb = malloc(sizeof(float) * N * D);
    struct sk_pgd_config pc = sk_pgd_defaults(EPS, 10);
    int rc = sk_pgd_perturb(m, &pc, te->x, te->y, N, 3, xa);
    sk_pgd_perturb(m, &pc, te->x, te->y, N, 3, xb);
    CHECK(rc == 0 && memcmp(xa, xb, sizeof(float) * N * D) == 0, "PGD is reproducible for a seed");
    int outside = 0;
    for (int i = 0; i < N * D; i++) {
        float d = fabsf(xa[i] - te->x[i]);
        outside += d > EPS * (1 + 1e-6f) || xa[i] < 0 || xa[i] > 1;
    }
    CHECK(outside == 0, "PGD stays in the eps-ball and the [0,1] box (%d outside)", outside);
    double acc_pgd, acc_noise;
    sk_pgd_accuracy(m, &pc, te->x, te->y, N, 3, &acc_pgd, NULL);
    struct sk_pgd_config noise = pc;
    noise.steps = 1;
    noise.step = 1e-12f; /* the random start alone */
    sk_pgd_accuracy(m, &noise, te->x, te->y, N, 3, &acc_noise, NULL);
    CHECK(acc_pgd < acc_noise - 0.1, "PGD (%.3f) is much stronger than uniform noise (%.3f)", acc_pgd, acc_noise);
    struct sk_pgd_config mc = pc;
    mc.mode = SK_MODE_MC;
    mc.eot = 8;
    double acc_eot;
    rc = sk_pgd_accuracy(m, &mc, te->x, te->y, N, 3, &acc_eot, NULL);
    CHECK(rc == 0 && acc_eot < acc_noise - 0.1, "EOT PGD through MC dropout works (%.3f)", acc_eot);
    /* FGSM = one step of 1.25 eps from a random start */
    struct sk_pgd_config fg = sk_pgd_defaults(EPS, 1);
    double acc_fgsm;
    sk_pgd_accuracy(m, &fg, te->x, te->y, N, 3, &acc_fgsm, NULL);
    CHECK(acc_fgsm < acc_noise && acc_fgsm >= acc_pgd - 0.05, "FGSM-RS %.3f between PGD %.3f and noise %.3f",
          acc_fgsm, acc_pgd, acc_noise);

    /* refusals */
    struct sk_pgd_config bad = pc;
    bad.steps = 0;
    CHECK(sk_pgd_perturb(m, &bad, te->x, te->y, N, 3, xa) == SK_EINVAL && strstr(sk_last_error(), "steps"),
          "0 steps refused: %s", sk_last_error());
    bad = pc;
    bad.eps = NAN;
    CHECK(sk_pgd_perturb(m, &bad, te->x, te->y, N, 3, xa) == SK_EINVAL && strstr(sk_last_error(), "epsilon"),
          "NaN eps refused: %s", sk_last_error());
    struct sk_adv_config a = sk_adv_defaults(SK_ADV_PGD, -1);
    CHECK(sk_adv_train(m, &cfg, &a, tr->x, tr->y, 100, NULL) == SK_EINVAL && strstr(sk_last_error(), "--adv-eps"),
          "negative eps refused: %s", sk_last_error());
    CHECK(sk_adv_kind_parse("trades") == SK_ADV_TRADES && sk_adv_kind_parse("foo") == -1, "kind names parse");
    free(xa), free(xb);
    sk_model_free(m);
}

int main(void)
{
    sk_set_threads(2);
    make_data();
    test_attack();
    test_training();
    sk_dataset_free(tr);
    sk_dataset_free(te);
    return sk_test_finish("test_robust");
}
