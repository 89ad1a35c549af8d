/* Calibration under attack (study.h): at eps = 0 the figures are eval's
 * (sk_bayes_report) bit for bit; along eps, adversarial accuracy does not
 * rise and falls well below clean; a deterministic net's ECE and NLL rise
 * under attack; an MC-dropout posterior (EOT attack, stochastic predictive)
 * gives the same monotone curve; bad eps lists are refused by name. */
#include <math.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static struct sk_dataset *tr, *te;

static void make_data(void)
{
    /* blobs squashed into (0,1), so that the [0,1] box of images applies */
    struct sk_dataset *all = sk_data_blobs(1400, 3, 16, 1.0f, 3);
    int idx[1400];
    for (int i = 0; i < 1400; i++) idx[i] = i;
    tr = sk_dataset_subset(all, idx, 1200);
    te = sk_dataset_subset(all, idx + 1200, 200);
    sk_dataset_free(all);
    struct sk_dataset *ds[2] = { tr, te };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ds[k]->n * ds[k]->dim; i++) ds[k]->x[i] = 1.0f / (1.0f + expf(-0.5f * ds[k]->x[i]));
}

static struct sk_posterior *trained(const char *spec, enum sk_bayes_method method)
{
    struct sk_model *m = sk_model_from_spec(spec);
    sk_model_init(m, SK_INIT_HE_UNIFORM, 7);
    struct sk_train_config tc = sk_train_defaults();
    tc.epochs = 15;
    tc.batch = 64;
    tc.seed = 7;
    tc.opt = sk_optim_defaults(SK_OPT_ADAM);
    tc.opt.lr = 3e-3f;
    CHECK(sk_train(m, &tc, tr->x, tr->y, tr->n) == SK_OK, "%s", sk_last_error());
    return sk_bayes_new(m, method);
}

static void test_deterministic(void)
{
    struct sk_posterior *p = trained("mlp:16-64-64-3:relu", SK_BAYES_DETERMINISTIC);
    struct sk_study_adv_cal_config cfg = sk_study_adv_cal_defaults(SK_ATTACK_PGD);
    cfg.attack.steps = 10;
    cfg.seed = 5;
    float eps[5] = { 0, 0.02f, 0.05f, 0.1f, 0.2f };
    struct sk_study_adv_cal out[5];
    CHECK(sk_study_adv_calibration_bayes(p, &cfg, eps, 5, te->x, te->y, te->n, out) == SK_OK, "%s", sk_last_error());
    struct sk_bayes_report rep;
    CHECK(sk_bayes_report(p, te->x, te->y, te->n, NULL, 0, cfg.samples, cfg.seed, &rep) == SK_OK, "%s",
          sk_last_error());
    /* eps 0 is eval, exactly */
    CHECK(out[0].clean.nll == rep.clean.nll && out[0].adv.nll == rep.clean.nll, "nll %.17g %.17g eval %.17g",
          out[0].clean.nll, out[0].adv.nll, rep.clean.nll);
    CHECK(out[0].clean.ece == rep.clean.ece && out[0].adv.ece == rep.clean.ece, "ece %.17g eval %.17g",
          out[0].adv.ece, rep.clean.ece);
    CHECK(out[0].adv.accuracy == rep.clean.accuracy && out[0].adv.brier == rep.clean.brier, "acc %g %g",
          out[0].adv.accuracy, rep.clean.accuracy);
    CHECK(out[0].grad_evals == 0, "eps 0 attacks nothing (%ld gradients)", out[0].grad_evals);
    CHECK(rep.clean.accuracy > 0.9, "the net learned the blobs (%g)", rep.clean.accuracy);
    for (int e = 1; e < 5; e++) {
        CHECK(out[e].adv.accuracy <= out[e - 1].adv.accuracy, "acc at eps %g: %g after %g", eps[e],
              out[e].adv.accuracy, out[e - 1].adv.accuracy);
        CHECK(out[e].clean.nll == out[0].clean.nll, "clean figures are the same at every eps");
        CHECK(out[e].grad_evals > 0, "eps %g took gradients", eps[e]);
    }
    CHECK(out[4].adv.accuracy < out[0].adv.accuracy - 0.3, "PGD at 0.2 breaks the net: %g vs %g",
          out[4].adv.accuracy, out[0].adv.accuracy);
    /* a deterministic net stays confident on the inputs it gets wrong */
    CHECK(out[3].adv.ece > out[0].adv.ece + 0.1, "ECE rises under attack: %g vs clean %g", out[3].adv.ece,
          out[0].adv.ece);
    CHECK(out[3].adv.nll > 2 * out[0].adv.nll, "NLL rises under attack: %g vs %g", out[3].adv.nll, out[0].adv.nll);
    CHECK(out[3].adv_conf > 0.6, "confidence on adversarial inputs stays high (%g)", out[3].adv_conf);
    CHECK(out[3].adv.ece >= out[3].adv_conf - out[3].adv.accuracy - 1e-9, "ECE >= conf - acc: %g %g %g",
          out[3].adv.ece, out[3].adv_conf, out[3].adv.accuracy);

    /* the classifier entry with its own probabilities agrees with the posterior's on a deterministic net */
    struct sk_classifier *c = sk_classifier_from_model(p->model, SK_MODE_EVAL, 1, 0);
    struct sk_study_adv_cal o2[5];
    CHECK(sk_study_adv_calibration(c, NULL, &cfg, eps, 5, te->x, te->y, te->n, o2) == SK_OK, "%s", sk_last_error());
    for (int e = 0; e < 5; e++)
        CHECK(o2[e].adv.accuracy == out[e].adv.accuracy && fabs(o2[e].adv.nll - out[e].adv.nll) < 1e-4,
              "eps %g: acc %g vs %g, nll %g vs %g", eps[e], o2[e].adv.accuracy, out[e].adv.accuracy, o2[e].adv.nll,
              out[e].adv.nll);
    /* FGSM is weaker than PGD at the same eps */
    struct sk_study_adv_cal_config fc = sk_study_adv_cal_defaults(SK_ATTACK_FGSM);
    struct sk_study_adv_cal of[5];
    CHECK(sk_study_adv_calibration(c, NULL, &fc, eps, 5, te->x, te->y, te->n, of) == SK_OK, "%s", sk_last_error());
    CHECK(of[3].adv.accuracy >= out[3].adv.accuracy, "fgsm %g pgd %g", of[3].adv.accuracy, out[3].adv.accuracy);
    /* bad lists */
    float bad[2] = { 0.1f, 0.05f };
    CHECK(sk_study_adv_calibration(c, NULL, &fc, bad, 2, te->x, te->y, te->n, of) == SK_EINVAL &&
              strstr(sk_last_error(), "adv_cal.eps"),
          "descending eps refused: %s", sk_last_error());
    float neg[1] = { -0.1f };
    CHECK(sk_study_adv_calibration(c, NULL, &fc, neg, 1, te->x, te->y, te->n, of) == SK_EINVAL &&
              strstr(sk_last_error(), "adv_cal.eps[0]"),
          "negative eps refused: %s", sk_last_error());
    sk_classifier_free(c);
    sk_bayes_report_free(&rep);
    sk_bayes_free(p);
}

static void test_mc_dropout(void)
{
    struct sk_posterior *p = trained("mlp:16-64-64-3:relu:dropout0.2", SK_BAYES_MCDROPOUT);
    struct sk_study_adv_cal_config cfg = sk_study_adv_cal_defaults(SK_ATTACK_PGD);
    cfg.attack.steps = 5;
    cfg.samples = 10;
    cfg.attack_samples = 4;
    cfg.attack.verdict_samples = 16;
    float eps[3] = { 0, 0.05f, 0.2f };
    struct sk_study_adv_cal out[3];
    CHECK(sk_study_adv_calibration_bayes(p, &cfg, eps, 3, te->x, te->y, 100, out) == SK_OK, "%s", sk_last_error());
    struct sk_bayes_report rep;
    CHECK(sk_bayes_report(p, te->x, te->y, 100, NULL, 0, cfg.samples, cfg.seed, &rep) == SK_OK, "%s",
          sk_last_error());
    CHECK(out[0].adv.ece == rep.clean.ece && out[0].adv.nll == rep.clean.nll, "mc-dropout eps 0 is eval: %g %g",
          out[0].adv.ece, rep.clean.ece);
    CHECK(out[1].adv.accuracy <= out[0].adv.accuracy && out[2].adv.accuracy <= out[1].adv.accuracy,
          "monotone: %g %g %g", out[0].adv.accuracy, out[1].adv.accuracy, out[2].adv.accuracy);
    CHECK(out[2].adv.accuracy < out[0].adv.accuracy - 0.3, "EOT-PGD at 0.2 breaks it: %g", out[2].adv.accuracy);
    /* EOT: every gradient averages attack_samples draws */
    CHECK(out[1].grad_evals > 0 && out[1].grad_evals % cfg.attack_samples == 0, "%ld gradient rows",
          out[1].grad_evals);
    sk_bayes_report_free(&rep);
    sk_bayes_free(p);
}

int main(void)
{
    sk_set_threads(1);
    make_data();
    test_deterministic();
    test_mc_dropout();
    sk_dataset_free(tr);
    sk_dataset_free(te);
    return sk_test_finish("test_study_adv_cal");
}
