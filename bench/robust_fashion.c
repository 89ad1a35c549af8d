/* Robust training and certification on Fashion-MNIST (or any IDX pair):
 * trains one model with an adversarial objective, then reports clean
 * accuracy, PGD-20 accuracy, IBP/CROWN certified accuracy and (optionally)
 * the attack suite on a subset, and checks certified <= suite-robust <= clean
 * per point. Prints one JSON line.
 *
 *   robust_fashion --adv pgd --eps 0.1 --steps 7 --epochs 8 [--n-train N]
 *                  [--spec S] [--lr 1e-3] [--suite-n 500] [--test-n 10000]
 *                  [--dir D | --data mnist] [--ibp-eps-train E] [--kappa K] [--warmup W] [--ramp R]
 *                  [--step-size A] [--beta B] [--out MODEL] [--eps-warmup E] [--threads T] [--batch B] [--seed S]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "skeptic/attack.h"
#include "skeptic/certify.h"
#include "skeptic/robust.h"

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    (void)ctx;
    fprintf(stderr, "epoch %d loss %.4f train-acc %.4f val-acc %.4f %.1fs\n", em->epoch + 1, em->train_loss,
            em->train_acc, em->val_acc, em->seconds);
    return 0;
}

int main(int argc, char **argv)
{
    const char *adv_s = "none", *spec = "cnn:1x28x28-conv16k4s2p1-relu-conv32k4s2p1-relu-flatten-dense100-relu-dense10";
    const char *dir = NULL, *data = NULL, *split_train = "train", *split_test = "test";
    float noise = 0, lambda = -1, eps = 0.1f, train_eps = 0, lr = 1e-3f, ibp_eps_train = 0, kappa = 0.5f, beta = 6;
    int steps = 7, epochs = 5, n_train = 60000, suite_n = 0, test_n = 10000, warmup = 1, ramp = 0, eps_warm = 0;
    int threads = 2, batch = 128;
    uint64_t seed = 1;
    float step_size = 0;
    const char *out = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(stderr, "usage: robust_fashion --adv none|pgd|fgsm|trades|ibp|fgsm-mix|n-fgsm|fgsm-ep|nuat [--eps E] [--steps K] [--step-size A]\n"
                            "  [--epochs N] [--n-train N] [--spec S] [--lr X] [--batch B] [--seed S] [--threads T]\n"
                            "  [--train-eps E (train at E, evaluate at --eps)] [--suite-n N] [--test-n N] [--dir D | --data mnist] [--beta B] [--eps-warmup E]\n"
                            "  [--noise K (n-fgsm noise radius / eps, default 2)] [--lambda L (fgsm-ep, default 10; nuat, default 4.5)]\n"
                            "  [--ibp-eps-train E] [--kappa K] [--warmup W] [--ramp R] [--out MODEL]\n"
                            "Trains one model, prints clean / PGD-20 / certified / suite accuracy as one JSON line.\n");
            return 0;
        }
    if (argc % 2 == 0) {
        fprintf(stderr, "flag %s has no value (--help lists the flags)\n", argv[argc - 1]);
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--adv")) adv_s = v;
        else if (!strcmp(k, "--spec")) spec = v;
        else if (!strcmp(k, "--dir")) dir = v;
        else if (!strcmp(k, "--data")) data = v;
        else if (!strcmp(k, "--eps")) eps = (float)atof(v);
        else if (!strcmp(k, "--train-eps")) train_eps = (float)atof(v);
        else if (!strcmp(k, "--lr")) lr = (float)atof(v);
        else if (!strcmp(k, "--steps")) steps = atoi(v);
        else if (!strcmp(k, "--epochs")) epochs = atoi(v);
        else if (!strcmp(k, "--n-train")) n_train = atoi(v);
        else if (!strcmp(k, "--suite-n")) suite_n = atoi(v);
        else if (!strcmp(k, "--test-n")) test_n = atoi(v);
        else if (!strcmp(k, "--ibp-eps-train")) ibp_eps_train = (float)atof(v);
        else if (!strcmp(k, "--kappa")) kappa = (float)atof(v);
        else if (!strcmp(k, "--beta")) beta = (float)atof(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--ramp")) ramp = atoi(v);
        else if (!strcmp(k, "--eps-warmup")) eps_warm = atoi(v);
        else if (!strcmp(k, "--noise")) noise = (float)atof(v);
        else if (!strcmp(k, "--lambda")) lambda = (float)atof(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--seed")) seed = (uint64_t)atoll(v);
        else if (!strcmp(k, "--step-size")) step_size = (float)atof(v);
        else if (!strcmp(k, "--out")) out = v;
        else {
            fprintf(stderr, "unknown flag %s\n", k);
            return 2;
        }
    }
    sk_set_threads(threads);
    int kind = sk_robust_kind_parse(adv_s);
    if (kind < 0) {
        fprintf(stderr, "unknown --adv %s\n", adv_s);
        return 2;
    }
    struct sk_dataset *tr, *te;
    if (data) { /* any dataset sk_data_open knows (mnist, an IDX dir, ...) */
        tr = sk_data_open(data, split_train, NULL);
        te = sk_data_open(data, split_test, NULL);
    } else {
        tr = sk_data_fashion_mnist(dir, split_train);
        te = sk_data_fashion_mnist(dir, split_test);
    }
    if (!tr || !te) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    if (n_train > tr->n) n_train = tr->n;
    if (test_n > te->n) test_n = te->n;
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = batch;
    cfg.seed = seed;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = lr;
    cfg.opt.sched = SK_SCHED_COSINE;
    cfg.on_epoch = on_epoch;
    struct sk_robust_config adv = sk_robust_defaults((enum sk_robust_kind)kind, train_eps > 0 ? train_eps : eps);
    adv.steps = steps;
    adv.step = step_size;
    adv.trades_beta = beta;
    adv.ibp_eps_train = ibp_eps_train;
    adv.ibp_kappa_end = kappa;
    adv.ibp_warmup_epochs = warmup;
    adv.ibp_ramp_epochs = ramp;
    adv.eps_warmup_epochs = eps_warm;
    if (noise > 0) adv.nfgsm_noise = noise;
    if (lambda >= 0) adv.ep_lambda = adv.nuat_lambda = lambda;
    struct sk_robust_report rep;
    double t0 = sk_now();
    int rc = sk_robust_train(m, &cfg, &adv, tr->x, tr->y, n_train, &rep);
    double train_s = sk_now() - t0;
    if (rep.best_epoch >= 0) {
        fprintf(stderr, "guard PGD-10 accuracy by epoch:");
        for (int e = 0; e < rep.epochs && e < 64; e++) fprintf(stderr, " %.3f", rep.guard_acc[e]);
        fprintf(stderr, "\nguard: kept epoch %d (best %.4f at epoch %d)\n", rep.kept_epoch + 1, rep.best_guard_acc,
                rep.best_epoch + 1);
    }
    if (rc) {
        fprintf(stderr, "training: %s\n", sk_last_error());
        return 1;
    }
    if (out && sk_model_save(m, out, NULL)) {
        fprintf(stderr, "%s\n", sk_last_error());
        return 1;
    }
    int N = test_n;
    double clean = 0, pgd = 0;
    sk_model_evaluate(m, te->x, te->y, N, &clean, NULL);
    unsigned char *pgd_ok = malloc(N), *cert = malloc(N), *certc = malloc(N);
    struct sk_attack_pgd_config pc = sk_attack_pgd_defaults(eps, 20);
    t0 = sk_now();
    sk_attack_pgd_accuracy(m, &pc, te->x, te->y, N, 12345, &pgd, pgd_ok);
    double pgd_s = sk_now() - t0;
    struct sk_certify_report cr, cl;
    sk_certify(m, SK_CERTIFY_IBP, te->x, te->y, N, eps, 0, 1, cert, &cr);
    sk_certify(m, SK_CERTIFY_LIPSCHITZ, te->x, te->y, N, eps, 0, 1, certc, &cl);
    fprintf(stderr, "clean %.4f pgd20 %.4f ibp-cert %.4f lipschitz-cert %.4f (train %.0fs)\n", clean, pgd,
            cr.certified_acc, cl.certified_acc, train_s);
    double suite = NAN, suite_clean = NAN;
    long viol = 0;
    int sn = suite_n < N ? suite_n : N;
    if (sn > 0) {
        struct sk_classifier *c = sk_classifier_from_model(m, SK_MODE_EVAL, 1, 0);
        struct sk_attack_config ac = sk_attack_defaults(SK_ATTACK_SUITE, SK_NORM_LINF, eps);
        ac.seed = 7;
        t0 = sk_now();
        struct sk_attack_result *r = sk_attack_evaluate(c, &ac, te->x, te->y, sn);
        if (!r) {
            fprintf(stderr, "suite: %s\n", sk_last_error());
        } else {
            suite = r->robust_acc;
            suite_clean = r->clean_acc;
            for (int i = 0; i < sn; i++) {
                /* certified => robust under the suite => correct */
                if (cert[i] && !r->robust[i]) viol++;
                if (r->robust[i] && !r->clean_correct[i]) viol++;
            }
            fprintf(stderr, "suite on %d: clean %.4f robust %.4f (%.0fs); stages:", sn, r->clean_acc, r->robust_acc,
                    sk_now() - t0);
            for (int s = 0; s < r->n_stages; s++)
                fprintf(stderr, " %s %.4f", r->stages[s].name, r->stages[s].robust_acc);
            fprintf(stderr, "\n");
            for (int w = 0; w < r->n_warnings; w++) fprintf(stderr, "warning: %s\n", r->warnings[w]);
        }
        sk_attack_result_free(r);
        sk_classifier_free(c);
    }
    /* per point over the whole test set: certified => PGD-robust => correct */
    long viol_pgd = 0;
    for (int i = 0; i < N; i++) viol_pgd += cert[i] && !pgd_ok[i];
    printf("{\"data\":\"%s\",\"adv\":\"%s\",\"spec\":\"%s\",\"params\":%zu,\"eps\":%g,\"train_eps\":%g,\"steps\":%d,\"step_size\":%g,\"beta\":%g,\"lambda\":%g,\"epochs\":%d,\"n_train\":%d,"
           "\"lr\":%g,\"train_s\":%.1f,\"test_n\":%d,\"clean\":%.4f,\"pgd20\":%.4f,\"pgd20_s\":%.1f,"
           "\"ibp_cert\":%.4f,\"lipschitz_cert\":%.4f,\"suite_n\":%d,\"suite_clean\":%.4f,\"suite\":%.4f,"
           "\"violations_suite\":%ld,\"violations_pgd\":%ld,\"guard_best_epoch\":%d,\"guard_best\":%.4f,\"guard_kept_epoch\":%d,"
           "\"catastrophic\":%d}\n",
           data ? data : "fashion-mnist", adv_s, spec, m->n_params, eps, train_eps > 0 ? train_eps : eps, steps, step_size, beta, kind == SK_ROBUST_NUAT ? adv.nuat_lambda : adv.ep_lambda, epochs, n_train, lr, train_s, N, clean, pgd, pgd_s,
           cr.certified_acc, cl.certified_acc, sn, suite_clean, suite, viol, viol_pgd, rep.best_epoch,
           rep.best_guard_acc, rep.kept_epoch, rep.catastrophic);
    fflush(stdout);
    free(pgd_ok), free(cert), free(certc);
    sk_model_free(m);
    sk_dataset_free(tr);
    sk_dataset_free(te);
    return 0;
}
