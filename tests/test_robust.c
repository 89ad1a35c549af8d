/* Robust training: on a small synthetic task PGD training raises PGD
 * accuracy over standard training; TRADES and fast FGSM (with its guard) do
 * too; IBP training raises certified accuracy; adversarial training of an
 * MC-dropout model with EOT runs and helps; the inner attack respects its
 * ball and beats random noise; bad configurations are refused. Bayesian
 * models trained adversarially: Bayes by Backprop with PGD-EOT inputs and
 * ensembles of PGD-trained members beat their plain versions under an EOT
 * attack; adversarial VI is bitwise reproducible (MLP and CNN); the FGSM-mix
 * loss of deep ensembles matches CE(x) + CE(x_adv) worked by hand. NuAT
 * (nuclear-norm single step) raises robustness through its regulariser. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"
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
    struct sk_robust_report rep;
};

static struct result run(const char *spec, struct sk_robust_config *adv, int epochs)
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
    int rc = sk_robust_train(m, &cfg, adv, tr->x, tr->y, tr->n, &r.rep);
    r.seconds = sk_now() - t0;
    CHECK(rc == 0, "%s training: %s", sk_robust_kind_name(adv->kind), sk_last_error());
    sk_model_evaluate(m, te->x, te->y, te->n, &r.clean, NULL);
    struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(EPS, 20);
    sk_attack_pgd_accuracy(m, &pc, te->x, te->y, te->n, 9, &r.pgd, NULL);
    struct sk_certify_report cr;
    sk_certify(m, SK_CERTIFY_IBP, te->x, te->y, te->n, EPS, 0, 1, NULL, &cr);
    r.cert = cr.certified_acc;
    fprintf(stderr, "  %-7s clean %.3f  pgd-20 %.3f  ibp-certified %.3f  (%.2fs)\n", sk_robust_kind_name(adv->kind),
            r.clean, r.pgd, r.cert, r.seconds);
    sk_model_free(m);
    return r;
}

static void test_training(void)
{
    const char *spec = "mlp:20-64-64-3:relu";
    struct sk_robust_config none = sk_robust_defaults(SK_ROBUST_NONE, EPS);
    struct result std = run(spec, &none, 12);
    CHECK(std.clean > 0.9, "standard training learns the task (clean %.3f)", std.clean);
    CHECK(std.pgd < std.clean - 0.1, "standard training is not robust: PGD-20 %.3f vs clean %.3f", std.pgd, std.clean);

    struct sk_robust_config pgd = sk_robust_defaults(SK_ROBUST_PGD, EPS);
    pgd.steps = 7;
    struct result rp = run(spec, &pgd, 12);
    CHECK(rp.pgd > std.pgd + 0.1, "PGD training raises PGD-20 accuracy: %.3f vs standard %.3f", rp.pgd, std.pgd);
    CHECK(rp.clean > 0.8, "PGD training keeps clean accuracy %.3f", rp.clean);

    struct sk_robust_config tra = sk_robust_defaults(SK_ROBUST_TRADES, EPS);
    tra.steps = 7;
    struct result rt = run(spec, &tra, 12);
    CHECK(rt.pgd > std.pgd + 0.1, "TRADES raises PGD-20 accuracy: %.3f vs standard %.3f", rt.pgd, std.pgd);

    struct sk_robust_config fg = sk_robust_defaults(SK_ROBUST_FGSM, EPS);
    fg.guard_n = 200;
    struct result rf = run(spec, &fg, 12);
    CHECK(rf.pgd > std.pgd + 0.1, "fast FGSM training raises PGD-20 accuracy: %.3f vs %.3f", rf.pgd, std.pgd);
    CHECK(rf.rep.best_epoch >= 0 && rf.rep.epochs == 12 && rf.rep.best_guard_acc > 0.3,
          "FGSM guard tracked PGD accuracy each epoch (best %.3f at epoch %d of %d)", rf.rep.best_guard_acc,
          rf.rep.best_epoch, rf.rep.epochs);
    for (int e = 0; e < 12; e++)
        CHECK(rf.rep.guard_acc[e] > 0, "FGSM guard accuracy recorded for epoch %d (%.3f)", e + 1, rf.rep.guard_acc[e]);
    CHECK(rf.rep.kept_epoch == (rf.rep.guard_acc[11] < rf.rep.best_guard_acc - fg.guard_tol ? rf.rep.best_epoch : 11),
          "guard keeps the last epoch unless it fell more than %.2f below the best (kept %d, best %.3f at %d, last %.3f)",
          fg.guard_tol, rf.rep.kept_epoch, rf.rep.best_guard_acc, rf.rep.best_epoch, rf.rep.guard_acc[11]);
    fg.guard_tol = -1; /* any epoch short of the best: restore the best */
    struct result rb = run(spec, &fg, 12);
    CHECK(rb.rep.kept_epoch == rb.rep.best_epoch && rb.rep.guard_acc[rb.rep.best_epoch] == rb.rep.best_guard_acc,
          "guard_tol < 0 restores the best guard epoch (kept %d, best %d)", rb.rep.kept_epoch, rb.rep.best_epoch);

    struct sk_robust_config nf = sk_robust_defaults(SK_ROBUST_NFGSM, EPS);
    nf.guard_n = 200;
    CHECK(nf.steps == 1 && nf.guard, "n-fgsm defaults: one step, guard on");
    struct result rn = run(spec, &nf, 12);
    CHECK(rn.pgd > std.pgd + 0.1, "N-FGSM training raises PGD-20 accuracy: %.3f vs %.3f", rn.pgd, std.pgd);

    struct sk_robust_config fe = sk_robust_defaults(SK_ROBUST_FGSM_EP, EPS);
    fe.guard_n = 200;
    CHECK(fe.steps == 1 && fe.guard && sk_robust_kind_parse("fgsm-ep") == SK_ROBUST_FGSM_EP, "fgsm-ep defaults: one step, guard on");
    struct result re = run(spec, &fe, 12);
    CHECK(re.pgd > std.pgd + 0.1, "FGSM-EP training raises PGD-20 accuracy: %.3f vs %.3f", re.pgd, std.pgd);

    struct sk_robust_config nu = sk_robust_defaults(SK_ROBUST_NUAT, EPS);
    nu.guard_n = 200;
    CHECK(nu.steps == 1 && nu.guard && nu.nuat_lambda == 4.5f && sk_robust_kind_parse("nuat") == SK_ROBUST_NUAT,
          "nuat defaults: one step, guard on, lambda 4.5");
    struct result ru = run(spec, &nu, 12);
    CHECK(ru.pgd > std.pgd + 0.1, "NuAT training raises PGD-20 accuracy: %.3f vs %.3f", ru.pgd, std.pgd);
    nu.nuat_lambda = 0; /* then it is clean training: the adversarial points never enter the loss */
    struct result r0 = run(spec, &nu, 12);
    CHECK(r0.pgd < ru.pgd - 0.1, "NuAT's robustness comes from its nuclear norm: lambda 0 gives %.3f, 4.5 %.3f", r0.pgd,
          ru.pgd);

    struct sk_robust_config ibp = sk_robust_defaults(SK_ROBUST_IBP, EPS);
    ibp.ibp_warmup_epochs = 1;
    ibp.ibp_ramp_epochs = 6;
    struct result ri = run(spec, &ibp, 12);
    CHECK(ri.cert > std.cert + 0.2, "IBP training raises certified accuracy: %.3f vs standard %.3f", ri.cert, std.cert);
    CHECK(ri.cert <= ri.pgd + 1e-9 && ri.pgd <= ri.clean + 1e-9, "certified %.3f <= PGD-robust %.3f <= clean %.3f",
          ri.cert, ri.pgd, ri.clean);

    /* MC dropout with EOT: attacks average gradients over 4 masks */
    struct sk_robust_config eot = sk_robust_defaults(SK_ROBUST_PGD, EPS);
    eot.steps = 5;
    eot.eot = 4;
    struct sk_robust_config none2 = none;
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
    struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(EPS, 10);
    int rc = sk_attack_pgd(m, &pc, te->x, te->y, N, 3, xa);
    sk_attack_pgd(m, &pc, te->x, te->y, N, 3, xb);
    CHECK(rc == 0 && memcmp(xa, xb, sizeof(float) * N * D) == 0, "PGD is reproducible for a seed");
    int outside = 0;
    for (int i = 0; i < N * D; i++) {
        float d = fabsf(xa[i] - te->x[i]);
        outside += d > EPS * (1 + 1e-6f) || xa[i] < 0 || xa[i] > 1;
    }
    CHECK(outside == 0, "PGD stays in the eps-ball and the [0,1] box (%d outside)", outside);
    double acc_pgd, acc_noise;
    sk_attack_pgd_accuracy(m, &pc, te->x, te->y, N, 3, &acc_pgd, NULL);
    struct sk_attack_pgd_config noise = pc;
    noise.steps = 1;
    noise.step = 1e-12f; /* the random start alone */
    sk_attack_pgd_accuracy(m, &noise, te->x, te->y, N, 3, &acc_noise, NULL);
    CHECK(acc_pgd < acc_noise - 0.1, "PGD (%.3f) is much stronger than uniform noise (%.3f)", acc_pgd, acc_noise);
    struct sk_attack_pgd_config mc = pc;
    mc.mode = SK_MODE_MC;
    mc.eot = 8;
    double acc_eot;
    rc = sk_attack_pgd_accuracy(m, &mc, te->x, te->y, N, 3, &acc_eot, NULL);
    CHECK(rc == 0 && acc_eot < acc_noise - 0.1, "EOT PGD through MC dropout works (%.3f)", acc_eot);
    /* FGSM = one step of 1.25 eps from a random start */
    struct sk_attack_pgd_config fg = sk_attack_pgd_defaults(EPS, 1);
    double acc_fgsm;
    sk_attack_pgd_accuracy(m, &fg, te->x, te->y, N, 3, &acc_fgsm, NULL);
    CHECK(acc_fgsm < acc_noise && acc_fgsm >= acc_pgd - 0.05, "FGSM-RS %.3f between PGD %.3f and noise %.3f",
          acc_fgsm, acc_pgd, acc_noise);
    /* N-FGSM's step: noise of 2 eps, one step of eps, only the box: the
     * points leave the eps-ball (up to 3 eps) but stay in [0,1] */
    struct sk_attack_pgd_config nf = sk_attack_pgd_defaults(EPS, 1);
    nf.start_radius = 2 * EPS;
    nf.step = EPS;
    nf.no_project = true;
    rc = sk_attack_pgd(m, &nf, te->x, te->y, N, 3, xa);
    float dmax = 0;
    int out_box = 0;
    for (int i = 0; i < N * D; i++) {
        float d = fabsf(xa[i] - te->x[i]);
        dmax = d > dmax ? d : dmax;
        out_box += xa[i] < 0 || xa[i] > 1;
    }
    CHECK(rc == 0 && dmax > 1.5f * EPS && dmax <= 3 * EPS * (1 + 1e-6f) && out_box == 0,
          "N-FGSM perturbation reaches beyond eps (max %.4f of eps %.4f, at most 3 eps) inside the box (%d outside)",
          dmax, EPS, out_box);

    /* NuAT's start: x +- r with probability 1/2 each (then the box), then its CE + nuclear-norm step */
    struct sk_attack_pgd_config nb = sk_attack_pgd_defaults(EPS, 1);
    nb.sign_start = true;
    nb.start_radius = 0.5f * EPS;
    nb.step = 1e-7f;
    nb.loss = SK_PGD_LOSS_CE_NUC;
    nb.nuc_lambda = 4.5f;
    rc = sk_attack_pgd(m, &nb, te->x, te->y, N, 3, xa);
    int off_start = 0, plus = 0;
    for (int i = 0; i < N * D; i++) {
        float x0 = te->x[i], lo = x0 - 0.5f * EPS, hi = x0 + 0.5f * EPS;
        float want = fabsf(xa[i] - lo) < fabsf(xa[i] - hi) ? lo : hi;
        plus += want == hi;
        want = want < 0 ? 0 : (want > 1 ? 1 : want);
        off_start += fabsf(xa[i] - want) > 1e-6f;
    }
    CHECK(rc == 0 && off_start == 0 && plus > N * D * 0.45 && plus < N * D * 0.55,
          "the Bernoulli start is x +- eps/2 (%d off), half of each sign (%d of %d +)", off_start, plus, N * D);
    nb.step = EPS;
    double acc_nuc, acc_nuc0;
    rc = sk_attack_pgd_accuracy(m, &nb, te->x, te->y, N, 3, &acc_nuc, NULL);
    nb.nuc_lambda = 0;
    sk_attack_pgd_accuracy(m, &nb, te->x, te->y, N, 3, &acc_nuc0, NULL);
    CHECK(rc == 0 && acc_nuc < acc_noise - 0.1 && acc_nuc0 < acc_noise - 0.1,
          "NuAT's step (CE + nuclear norm %.3f, CE alone %.3f) is much stronger than noise (%.3f)", acc_nuc, acc_nuc0,
          acc_noise);
    nb.nuc_lambda = NAN;
    CHECK(sk_attack_pgd(m, &nb, te->x, te->y, N, 3, xa) == SK_EINVAL && strstr(sk_last_error(), "nuclear"),
          "NaN nuclear-norm weight refused: %s", sk_last_error());

    /* a given start (FGSM-EP's prior): projected onto the ball and the box, then the steps */
    float *xs = malloc(sizeof(float) * (size_t)N * D);
    for (int i = 0; i < N * D; i++) xs[i] = te->x[i] + (i % 3 == 0 ? 0.5f * EPS : (i % 3 == 1 ? -3 * EPS : 2.0f));
    struct sk_attack_pgd_config st = sk_attack_pgd_defaults(EPS, 1);
    st.x_start = xs;
    st.step = 1e-7f;
    rc = sk_attack_pgd(m, &st, te->x, te->y, N, 3, xa);
    int bad_start = 0;
    for (int i = 0; i < N * D; i++) {
        float x0 = te->x[i], want = i % 3 == 0 ? x0 + 0.5f * EPS : (i % 3 == 1 ? x0 - EPS : x0 + EPS);
        want = want < 0 ? 0 : (want > 1 ? 1 : want);
        bad_start += fabsf(xa[i] - want) > 1e-6f;
    }
    CHECK(rc == 0 && bad_start == 0, "x_start is the starting point, projected onto the eps-ball and the box (%d off)",
          bad_start);
    st.step = EPS;
    rc = sk_attack_pgd(m, &st, te->x, te->y, N, 3, xa);
    float dm = 0;
    for (int i = 0; i < N * D; i++) dm = fmaxf(dm, fabsf(xa[i] - te->x[i]));
    CHECK(rc == 0 && dm <= EPS * (1 + 1e-6f), "a step from x_start stays in the eps-ball (max %.4f)", dm);
    free(xs);

    /* refusals */
    struct sk_attack_pgd_config bad = pc;
    bad.steps = 0;
    CHECK(sk_attack_pgd(m, &bad, te->x, te->y, N, 3, xa) == SK_EINVAL && strstr(sk_last_error(), "steps"),
          "0 steps refused: %s", sk_last_error());
    bad = pc;
    bad.eps = NAN;
    CHECK(sk_attack_pgd(m, &bad, te->x, te->y, N, 3, xa) == SK_EINVAL && strstr(sk_last_error(), "epsilon"),
          "NaN eps refused: %s", sk_last_error());
    struct sk_robust_config a = sk_robust_defaults(SK_ROBUST_PGD, -1);
    CHECK(sk_robust_train(m, &cfg, &a, tr->x, tr->y, 100, NULL) == SK_EINVAL && strstr(sk_last_error(), "adv.eps"),
          "negative eps refused: %s", sk_last_error());
    a = sk_robust_defaults(SK_ROBUST_NFGSM, EPS);
    a.nfgsm_noise = -1;
    CHECK(sk_robust_check(&a) == SK_EINVAL && strstr(sk_last_error(), "adv.nfgsm_noise"), "negative N-FGSM noise refused: %s",
          sk_last_error());
    a.nfgsm_noise = 1;
    CHECK(sk_robust_check(&a) == SK_OK, "N-FGSM noise of 1 eps accepted");
    a = sk_robust_defaults(SK_ROBUST_FGSM_EP, EPS);
    CHECK(a.ep_lambda == 10 && sk_robust_check(&a) == SK_OK, "fgsm-ep: regulariser weight 10 by default");
    a.ep_lambda = -1;
    CHECK(sk_robust_check(&a) == SK_EINVAL && strstr(sk_last_error(), "adv.ep_lambda"), "negative FGSM-EP lambda refused: %s",
          sk_last_error());
    a = sk_robust_defaults(SK_ROBUST_NUAT, EPS);
    a.nuat_lambda = -1;
    CHECK(sk_robust_check(&a) == SK_EINVAL && strstr(sk_last_error(), "NuAT"), "negative NuAT lambda refused: %s",
          sk_last_error());
    CHECK(strcmp(sk_robust_kind_name(SK_ROBUST_NUAT), "nuat") == 0 &&
              strcmp(sk_robust_kind_name(SK_ROBUST_CROWN_IBP), "crown-ibp") == 0 &&
              strcmp(sk_robust_kind_name((enum sk_robust_kind)(SK_ROBUST_CROWN_IBP + 1)), "?") == 0,
          "kind names: nuat, crown-ibp, and ? past the end");
    CHECK(sk_robust_kind_parse("trades") == SK_ROBUST_TRADES && sk_robust_kind_parse("n-fgsm") == SK_ROBUST_NFGSM &&
              sk_robust_kind_parse("foo") == -1, "kind names parse");
    free(xa), free(xb);
    sk_model_free(m);
}

/* ---------------- Bayesian models trained adversarially ---------------- */

/* Robust accuracy under PGD-20 (L-inf, eps 0.1) on 200 test rows through the
 * posterior's classifier: the attack's gradients are EOT over S samples
 * (ensemble: S = 0, every member), the verdict is the predictive's own. */
static double eot_pgd_acc(struct sk_posterior *p, int S, double *clean)
{
    struct sk_classifier *cl = sk_bayes_classifier(p, S, 11);
    struct sk_attack_config ac = sk_attack_defaults(SK_ATTACK_PGD, SK_NORM_LINF, EPS);
    ac.steps = 20;
    ac.seed = 4;
    struct sk_attack_result *r = cl ? sk_attack_evaluate(cl, &ac, te->x, te->y, 200) : NULL;
    CHECK(r != NULL, "EOT PGD on the %s posterior: %s", sk_bayes_method_name(p->method), sk_last_error());
    double acc = r ? r->robust_acc : -1;
    if (clean) *clean = r ? r->clean_acc : -1;
    CHECK(!r || !r->no_eot, "the posterior attack is an EOT attack (%d samples)", r ? r->eot_samples : 0);
    sk_attack_result_free(r);
    sk_classifier_free(cl);
    return acc;
}

static struct sk_posterior *train_vi(const char *spec, const struct sk_robust_config *adv, int epochs, uint64_t seed,
                                     int n, double *secs)
{
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 3);
    struct sk_posterior *p = sk_bayes_new(m, SK_BAYES_VI);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = 64;
    cfg.seed = seed;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 2e-3f;
    struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
    vc.prior_sigma = 1.0f;
    double t0 = sk_now();
    int rc = sk_robust_train_vi(p, &cfg, &vc, adv, tr->x, tr->y, n);
    if (secs) *secs = sk_now() - t0;
    CHECK(rc == 0, "VI training (%s, adv %s): %s", spec, adv ? sk_robust_kind_name(adv->kind) : "none",
          sk_last_error());
    CHECK(p->vi.batch == NULL && p->vi.batch_ctx == NULL,
          "the posterior keeps no pointer to the caller's adversarial config");
    return p;
}

static bool same_posterior(const struct sk_posterior *a, const struct sk_posterior *b)
{
    size_t P = a->model->n_params;
    return P == b->model->n_params && !memcmp(a->model->params, b->model->params, sizeof(float) * P) &&
           !memcmp(a->rho, b->rho, sizeof(float) * P);
}

/* Bayes by Backprop with PGD-EOT inputs: more robust than plain BBB under an
 * EOT attack at the same budget; the inner attack stays in its ball, beats
 * noise and is reproducible; the same seed gives the same posterior, bit for
 * bit, on the MLP (local reparameterisation) and on a CNN; bad kinds refused. */
static void test_vi_adv(void)
{
    const char *spec = "mlp:20-64-64-3:relu";
    double ts, ta, cs, ca;
    struct sk_posterior *std = train_vi(spec, NULL, 8, 5, tr->n, &ts);
    struct sk_robust_config adv = sk_robust_defaults(SK_ROBUST_PGD, EPS);
    adv.steps = 4;
    adv.eot = 3;
    struct sk_posterior *rob = train_vi(spec, &adv, 8, 5, tr->n, &ta);
    double as = eot_pgd_acc(std, 8, &cs), aa = eot_pgd_acc(rob, 8, &ca);
    fprintf(stderr, "  vi      clean %.3f  eot-pgd-20 %.3f  (%.2fs)\n  vi+pgd  clean %.3f  eot-pgd-20 %.3f  (%.2fs)\n",
            cs, as, ts, ca, aa, ta);
    CHECK(cs > 0.9 && as < cs - 0.1, "plain VI learns the task (clean %.3f) and is not robust (EOT PGD %.3f)", cs, as);
    CHECK(aa > as + 0.1, "PGD-EOT training of VI raises EOT PGD-20 accuracy: %.3f vs plain VI %.3f", aa, as);
    CHECK(ca > 0.8, "adversarially trained VI keeps clean accuracy %.3f", ca);

    /* the inner attack on its own */
    int N = 200, D = 20;
    float *xa = malloc(sizeof(float) * N * D), *xb = malloc(sizeof(float) * N * D);
    int rc = sk_robust_vi_perturb(std, &adv, te->x, te->y, N, 3, xa);
    sk_robust_vi_perturb(std, &adv, te->x, te->y, N, 3, xb);
    CHECK(rc == 0 && !memcmp(xa, xb, sizeof(float) * N * D), "VI PGD-EOT is reproducible for a seed (%s)",
          rc ? sk_last_error() : "ok");
    int outside = 0;
    for (int i = 0; i < N * D; i++)
        outside += fabsf(xa[i] - te->x[i]) > EPS * (1 + 1e-6f) || xa[i] < 0 || xa[i] > 1;
    CHECK(outside == 0, "VI PGD-EOT stays in the eps-ball and the box (%d outside)", outside);
    float *pa = malloc(sizeof(float) * N * 3), *pn = malloc(sizeof(float) * N * 3);
    for (int i = 0; i < N * D; i++) { /* uniform noise of the same radius */
        float u = te->x[i] + EPS * (2.0f * sk_rng_uniform_at(99, (uint64_t)i) - 1.0f);
        xb[i] = u < 0 ? 0 : u > 1 ? 1 : u;
    }
    sk_bayes_predict(std, xa, N, 16, 7, pa, NULL);
    sk_bayes_predict(std, xb, N, 16, 7, pn, NULL);
    int ok_a = 0, ok_n = 0;
    for (int i = 0; i < N; i++) {
        int ba = 0, bn = 0;
        for (int k = 1; k < 3; k++) {
            if (pa[i * 3 + k] > pa[i * 3 + ba]) ba = k;
            if (pn[i * 3 + k] > pn[i * 3 + bn]) bn = k;
        }
        ok_a += ba == te->y[i];
        ok_n += bn == te->y[i];
    }
    CHECK(ok_a < ok_n - N / 10, "VI PGD-EOT (%d/%d correct) is much stronger than noise (%d/%d)", ok_a, N, ok_n, N);
    free(pa), free(pn), free(xa), free(xb);

    /* same seed -> the same bits; another seed -> another posterior */
    struct sk_robust_config small = adv;
    small.steps = 2;
    small.eot = 2;
    small.eps_warmup_epochs = 1;
    const char *specs[2] = { spec, "cnn:1x4x5-conv4k3p1-relu-flatten-dense3" };
    for (int k = 0; k < 2; k++) {
        struct sk_posterior *a = train_vi(specs[k], &small, 2, 8, 500, NULL),
                            *b = train_vi(specs[k], &small, 2, 8, 500, NULL),
                            *c = train_vi(specs[k], &small, 2, 9, 500, NULL),
                            *d = train_vi(specs[k], NULL, 2, 8, 500, NULL);
        CHECK(same_posterior(a, b), "%s: adversarial VI with one seed gives a bitwise-identical posterior", specs[k]);
        CHECK(!same_posterior(a, c), "%s: another seed gives another posterior", specs[k]);
        CHECK(!same_posterior(a, d), "%s: the adversarial inputs change the posterior", specs[k]);
        sk_bayes_free(a), sk_bayes_free(b), sk_bayes_free(c), sk_bayes_free(d);
    }

    /* refusals name the setting */
    struct sk_robust_config tra = sk_robust_defaults(SK_ROBUST_TRADES, EPS);
    struct sk_bayes_vi_config vc = sk_bayes_vi_defaults();
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = 1;
    struct sk_posterior *p = sk_bayes_new(sk_model_from_spec(spec), SK_BAYES_VI);
    rc = sk_robust_train_vi(p, &cfg, &vc, &tra, tr->x, tr->y, 100);
    CHECK(rc == SK_EINVAL && strstr(sk_last_error(), "pgd and fgsm") && strstr(sk_last_error(), "trades"),
          "VI refuses TRADES training: %s", sk_last_error());
    struct sk_robust_config neg = sk_robust_defaults(SK_ROBUST_PGD, -0.5f);
    rc = sk_robust_train_vi(p, &cfg, &vc, &neg, tr->x, tr->y, 100);
    CHECK(rc == SK_EINVAL && strstr(sk_last_error(), "adv.eps"), "VI refuses a negative eps: %s", sk_last_error());
    sk_bayes_free(p);
    sk_bayes_free(std);
    sk_bayes_free(rob);
}

static struct sk_posterior *train_ens(const struct sk_robust_config *adv, int M, int epochs)
{
    struct sk_posterior *p = sk_bayes_new(sk_model_from_spec("mlp:20-64-64-3:relu"), SK_BAYES_ENSEMBLE);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = 64;
    cfg.seed = 5;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = 2e-3f;
    int rc = sk_robust_train_ensemble(p, M, SK_INIT_HE_UNIFORM, &cfg, adv, tr->x, tr->y, tr->n);
    CHECK(rc == 0 && p->n_members == M, "ensemble training (adv %s): %s", adv ? sk_robust_kind_name(adv->kind) : "none",
          sk_last_error());
    return p;
}

/* Deep ensembles with adversarially trained members: more robust under the
 * (exact, all-member) EOT attack than the plain ensemble. */
static void test_ensemble_adv(void)
{
    struct sk_posterior *plain = train_ens(NULL, 2, 6);
    struct sk_robust_config pgd = sk_robust_defaults(SK_ROBUST_PGD, EPS);
    pgd.steps = 5;
    struct sk_posterior *rob = train_ens(&pgd, 2, 6);
    double cp, cr, ap = eot_pgd_acc(plain, 0, &cp), ar = eot_pgd_acc(rob, 0, &cr);
    fprintf(stderr, "  ens     clean %.3f  eot-pgd-20 %.3f\n  ens+pgd clean %.3f  eot-pgd-20 %.3f\n", cp, ap, cr, ar);
    CHECK(ar > ap + 0.1, "PGD-trained ensemble raises EOT PGD-20 accuracy: %.3f vs plain %.3f", ar, ap);
    CHECK(cr > 0.8, "PGD-trained ensemble keeps clean accuracy %.3f", cr);
    /* members differ (own seeds) and the first is the posterior's point estimate */
    size_t P = rob->model->n_params;
    CHECK(memcmp(rob->members, rob->members + P, sizeof(float) * P) != 0 &&
          !memcmp(rob->members, rob->model->params, sizeof(float) * P), "adversarial members are distinct");
    sk_bayes_free(plain);
    sk_bayes_free(rob);
}

/* FGSM-mix (Lakshminarayanan et al.): the hook's loss is CE(x) + CE(x'),
 * x' = clip(x + eps sign(grad_x CE)), and its parameter gradient is that of
 * the two CE terms with x' held fixed; checked by hand on a linear model. */
static void test_fgsm_mix(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:4-3");
    const int n = 3, D = 4, K = 3;
    const float x[12] = { 0.2f, 0.7f, 0.5f, 0.995f, 0.9f, 0.1f, 0.4f, 0.6f, 0.3f, 0.3f, 0.8f, 0.05f };
    const int y[3] = { 2, 0, 1 };
    const struct sk_layer *ly = &m->layers[0];
    for (int i = 0; i < K * D; i++) m->params[ly->w_off + i] = 0.37f * sinf(1.3f * (float)i + 0.4f);
    for (int k = 0; k < K; k++) m->params[ly->b_off + k] = 0.1f * (float)(k - 1);
    const float *W = m->params + ly->w_off, *b = m->params + ly->b_off;
    float eps = 0.01f;
    CHECK(sk_robust_kind_parse("fgsm-mix") == SK_ROBUST_FGSM_MIX &&
              !strcmp(sk_robust_kind_name(SK_ROBUST_FGSM_MIX), "fgsm-mix"),
          "fgsm-mix parses and names itself");
    struct sk_robust_config a = sk_robust_defaults(SK_ROBUST_FGSM_MIX, eps);
    CHECK(sk_robust_check(&a) == SK_OK && a.steps == 1 && !a.guard, "fgsm-mix defaults: one step, no guard");

    /* by hand, in double: p = softmax(Wx + b); grad_x CE = W^T (p - e_y) */
    double xa[12], loss = 0, loss_clean = 0, dW[12] = { 0 }, db[3] = { 0 };
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            if (pass == 1 && i == 0) loss_clean = loss;
            const double *xi = pass ? xa + i * D : NULL;
            double xv[4], z[3], p[3], mx = -1e30, s = 0;
            for (int d = 0; d < D; d++) xv[d] = xi ? xi[d] : x[i * D + d];
            for (int k = 0; k < K; k++) {
                z[k] = b[k];
                for (int d = 0; d < D; d++) z[k] += (double)W[k * D + d] * xv[d];
                mx = fmax(mx, z[k]);
            }
            for (int k = 0; k < K; k++) s += exp(z[k] - mx);
            for (int k = 0; k < K; k++) p[k] = exp(z[k] - mx) / s;
            loss += -log(p[y[i]]) / n;
            for (int k = 0; k < K; k++) {
                double r = p[k] - (k == y[i]);
                db[k] += r / n;
                for (int d = 0; d < D; d++) dW[k * D + d] += r * xv[d] / n;
            }
            if (!pass)
                for (int d = 0; d < D; d++) {
                    double gx = 0;
                    for (int k = 0; k < K; k++) gx += (double)W[k * D + d] * (p[k] - (k == y[i]));
                    double u = xv[d] + (gx > 0 ? eps : gx < 0 ? -eps : 0);
                    xa[i * D + d] = u < 0 ? 0 : u > 1 ? 1 : u;
                }
        }

    struct sk_train_config cfg = sk_train_defaults();
    cfg.batch = n;
    cfg.epochs = 1;
    struct sk_trainer *t = sk_trainer_new(m, &cfg, x, y, n);
    struct sk_robust_loss *l = sk_robust_loss_new(m, &a, n);
    struct sk_graph *g = sk_graph_new();
    CHECK(t && l && g, "trainer, loss and graph: %s", sk_last_error());
    if (!t || !l || !g) return;
    memset(m->grads, 0, sizeof(float) * m->n_params);
    int z = -1, L = sk_robust_loss_fn(l, t, g, x, y, n, 1, &z);
    CHECK(L >= 0 && z >= 0, "fgsm-mix hook builds a loss: %s", sk_last_error());
    if (L >= 0) {
        double got = sk_graph_value(g, L)[0];
        CHECK(fabs(got - loss) < 1e-5 * (1 + loss), "fgsm-mix loss %.7f = CE(x) + CE(x_adv) by hand %.7f", got, loss);
        CHECK(sk_graph_backward(g, L, NULL) == 0, "backward: %s", sk_last_error());
        double e = 0;
        for (int i = 0; i < K * D; i++) e = fmax(e, fabs(m->grads[ly->w_off + i] - dW[i]));
        for (int k = 0; k < K; k++) e = fmax(e, fabs(m->grads[ly->b_off + k] - db[k]));
        CHECK(e < 1e-5, "fgsm-mix parameter gradient matches the hand-derived one (max error %.2e)", e);
        /* CE is convex in x for a linear model, so the FGSM half is at least the clean half */
        CHECK(got > 2 * loss_clean + 1e-6, "fgsm-mix loss %.7f exceeds twice the clean CE %.7f", got, loss_clean);
    }
    sk_graph_free(g);
    sk_robust_loss_free(l);
    sk_trainer_free(t);
    sk_model_free(m);
}

int main(void)
{
    sk_set_threads(2);
    make_data();
    test_attack();
    test_training();
    test_fgsm_mix();
    test_vi_adv();
    test_ensemble_adv();
    sk_dataset_free(tr);
    sk_dataset_free(te);
    return sk_test_finish("test_robust");
}
