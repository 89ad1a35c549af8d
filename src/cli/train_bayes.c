/* `skeptic train --method M`: Bayesian training (reached from cmd_train.c
 * when --method is given and is not "deterministic"). One posterior file
 * per run, loadable by eval, compare and the library (sk_posterior_load). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/bayes.h"
#include "skeptic/robust.h"

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    fprintf(stderr, "epoch %d  loss %.4f  acc %.4f  %.1f s  %.0f samples/s\n", em->epoch + 1, em->train_loss,
            em->train_acc, em->seconds, em->samples_per_s);
    (void)ctx;
    return 0;
}

bool cli_train_wants_bayes(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--method") && i + 1 < argc) v = argv[i + 1];
        else if (!strncmp(argv[i], "--method=", 9)) v = argv[i] + 9;
        if (v && strcmp(v, "deterministic")) return true;
    }
    return false;
}

int cli_train_bayes(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *arch = NULL, *out = NULL, *method = NULL, *prior = "gaussian", *hessian = "kfac", *normalize = "none";
    int epochs = 10, batch = 128, members = 5, anneal = 0, burnin = 1, thin = 100, keep = 20, cycles = 0;
    float lr = 1e-3f, sgld_lr = 0.01f, prior_sigma = 1.0f, init_sigma = 0.02f, kl_weight = 1.0f, val_split = 0;
    float sgld_prior = 1.0f, prior_precision = 0;
    uint64_t seed = 1;
    bool temperature = false, probit = false, no_lrt = false, flipout = false, no_flipout = false;
    /* adversarial training: the options of the deterministic `skeptic train --adv` */
    const char *adv_s = "none";
    float adv_eps = NAN, adv_step = 0, adv_beta = 6, clip_min = NAN, clip_max = NAN;
    int adv_steps = 10, adv_eot = -1;
    struct cli_opt opts[] = {
        CLI_DATA_OPTS(c), CLI_THREADS_OPT(c),
        { "method", CLI_STR, &method, "M", "vi | mc-dropout | ensemble | sgld | laplace | deterministic" },
        { "arch", CLI_STR, &arch, "SPEC", "architecture (mc-dropout: with dropout, e.g. mlp:784-400-400-10:relu:dropout0.2)" },
        { "out", CLI_STR, &out, "FILE", "posterior file to write (.safetensors, atomically)" },
        { "epochs", CLI_INT, &epochs, "E", "epochs (vi, mc-dropout, ensemble members; sgld/laplace: of the warm start) (default 10)" },
        { "batch", CLI_INT, &batch, "B", "minibatch (default 128)" },
        { "lr", CLI_FLOAT, &lr, "LR", "Adam learning rate (default 1e-3; vi: cosine schedule)" },
        { "seed", CLI_U64, &seed, "S", "seed (default 1)" },
        { "normalize", CLI_STR, &normalize, "K", "none | minmax | standardize (statistics from the training split, saved in the model)" },
        { "val-split", CLI_FLOAT, &val_split, "F", "held-out fraction for --temperature and laplace --select-on-val" },
        { "temperature", CLI_FLAG, &temperature, NULL, "fit a temperature on the validation split afterwards" },
        { "members", CLI_INT, &members, "M", "ensemble members (default 5)" },
        { "prior", CLI_STR, &prior, "P", "vi prior: gaussian | mixture (default gaussian)" },
        { "prior-sigma", CLI_FLOAT, &prior_sigma, "S", "vi Gaussian prior scale (default 1)" },
        { "init-sigma", CLI_FLOAT, &init_sigma, "S", "vi initial posterior scale (default 0.02)" },
        { "kl-weight", CLI_FLOAT, &kl_weight, "B", "vi KL weight (default 1)" },
        { "kl-anneal", CLI_INT, &anneal, "E", "vi: ramp the KL weight up over E epochs (default 0)" },
        { "no-local-reparam", CLI_FLAG, &no_lrt, NULL, "vi: sample weights per minibatch instead of the local trick" },
        { "flipout", CLI_FLAG, &flipout, NULL, "vi: Flipout where the local trick does not apply (CNNs): lower-variance gradients, 2.4x the time" },
        { "no-flipout", CLI_FLAG, &no_flipout, NULL, "vi: one weight draw per minibatch where the local trick does not apply (the default)" },
        { "sgld-epochs", CLI_INT, &burnin, "E", "sgld burn-in epochs (default 1)" },
        { "sgld-lr", CLI_FLOAT, &sgld_lr, "LR", "sgld step size on the mean loss (default 0.01)" },
        { "sgld-thin", CLI_INT, &thin, "K", "sgld: keep every K-th step (default 100)" },
        { "sgld-keep", CLI_INT, &keep, "N", "sgld: samples kept (default 20)" },
        { "sgld-cycles", CLI_INT, &cycles, "C", "sgld: cyclical step size with C cycles (default 0 = constant)" },
        { "sgld-prior", CLI_FLOAT, &sgld_prior, "S", "sgld Gaussian prior scale (default 1)" },
        { "hessian", CLI_STR, &hessian, "H", "laplace: kfac | full (default kfac)" },
        { "prior-precision", CLI_FLOAT, &prior_precision, "D", "laplace prior precision (default: marginal likelihood)" },
        { "probit", CLI_FLAG, &probit, NULL, "laplace: probit predictive instead of Monte Carlo" },
        { "adv", CLI_STR, &adv_s, "K", "adversarial training (vi, mc-dropout, ensemble): none | pgd | fgsm | trades | ibp | "
          "fgsm-mix | n-fgsm | fgsm-ep | nuat (vi: pgd or fgsm only; fgsm-mix = CE(x) + CE(x + eps sign grad), Lakshminarayanan et al.)" },
        { "adv-eps", CLI_FLOAT, &adv_eps, "E", "L-inf radius of the adversarial training, in the data's units (default 0.1; fgsm-mix 0.01)" },
        { "adv-steps", CLI_INT, &adv_steps, "K", "inner PGD steps for pgd/trades (default 10)" },
        { "adv-step-size", CLI_FLOAT, &adv_step, "A", "inner step size (default 2.5 eps/steps; fgsm 1.25 eps; fgsm-mix eps)" },
        { "adv-beta", CLI_FLOAT, &adv_beta, "B", "TRADES weight of the KL term (default 6)" },
        CLI_BOX_OPTS(clip_min, clip_max),
        { "adv-eot", CLI_INT, &adv_eot, "S", "EOT samples per inner step: vi weight draws / mc-dropout masks (default 4; "
          "1: attack the mean weights / dropout off)" },
        { 0 },
    };
    static const struct cli_help h = {
        "train --method",
        "skeptic train --method vi|mc-dropout|ensemble|sgld|laplace --data D --arch SPEC --out FILE [options]",
        "Train a Bayesian neural network (see include/skeptic/bayes.h for each method). vi: Bayes by Backprop with\n"
        "the local reparameterisation trick (MLPs; other specs one weight draw per minibatch, or --flipout); ensemble: M members from independent seeds in one file; sgld: Langevin\n"
        "dynamics after --epochs of Adam, --sgld-epochs more epochs of sampling; laplace: last-layer Laplace around a\n"
        "network trained for --epochs. Evaluate with skeptic eval --samples S --ood mnist --plots DIR.\n"
        "--adv K trains vi, mc-dropout and ensemble members adversarially: vi replaces each minibatch by PGD (or\n"
        "FGSM-RS) points found against the current posterior with EOT over --adv-eot weight draws per step;\n"
        "mc-dropout by the MC-mode attack over --adv-eot masks; ensemble members each by sk_adv_train.",
        "skeptic train --method vi --data fashion-mnist --arch mlp:784-400-400-10:relu --epochs 20 --out bbb.safetensors\n"
        "skeptic train --method ensemble --members 5 --data fashion-mnist --arch mlp:784-400-400-10:relu --out ens.safetensors\n"
        "skeptic train --method vi --data fashion-mnist --arch mlp:784-400-400-10:relu --adv pgd --adv-eps 0.1 --adv-steps 5 --adv-eot 4 --out bbb-pgd.safetensors\n"
        "skeptic train --method ensemble --data fashion-mnist --arch mlp:784-400-400-10:relu --adv fgsm-mix --out ens-adv.safetensors",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.data) return cli_usage("--data D is required");
    if (!arch) return cli_usage("--arch SPEC is required");
    if (!out) return cli_usage("--out FILE is required");
    int pk = sk_prep_kind_parse(normalize);
    if (pk < 0) return cli_usage("--normalize '%s' is not none, minmax or standardize", normalize);
    if (c.classes) {
        int cl[1024], k;
        if ((rc = cli_parse_classes(c.classes, cl, 1024, &k))) return rc;
    }
    int mk = method ? sk_bayes_method_parse(method) : -1;
    if (mk < 0) return cli_usage("--method '%s' is not vi, mc-dropout, ensemble, sgld, laplace or deterministic",
                                 method ? method : "");
    if (epochs < 1 || batch < 1 || members < 1 || burnin < 0 || thin < 1 || keep < 1 || cycles < 0)
        return cli_usage("--epochs, --batch, --members, --sgld-thin, --sgld-keep must be >= 1");
    if (!(lr > 0) || !(sgld_lr > 0)) return cli_usage("--lr and --sgld-lr must be positive");
    if (!(val_split >= 0 && val_split < 1)) return cli_usage("--val-split must be in [0,1)");
    if (temperature && val_split <= 0) return cli_usage("--temperature needs --val-split");
    if (flipout && no_flipout) return cli_usage("--flipout and --no-flipout contradict each other");
    if (strcmp(prior, "gaussian") && strcmp(prior, "mixture")) return cli_usage("--prior must be gaussian or mixture");
    if (strcmp(hessian, "kfac") && strcmp(hessian, "full")) return cli_usage("--hessian must be kfac or full");
    int adv_kind = sk_adv_kind_parse(adv_s);
    if (adv_kind < 0) return cli_usage("--adv '%s' is not none, pgd, fgsm, trades, ibp, fgsm-mix, n-fgsm, fgsm-ep or nuat", adv_s);
    struct sk_adv_config advc = sk_adv_defaults((enum sk_adv_kind)adv_kind,
                                                isnan(adv_eps) ? (adv_kind == SK_ADV_FGSM_MIX ? 0.01f : 0.1f) : adv_eps);
    if (adv_kind != SK_ADV_NONE) {
        if (mk != SK_BAYES_VI && mk != SK_BAYES_MCDROPOUT && mk != SK_BAYES_ENSEMBLE)
            return cli_usage("--adv %s: adversarial training applies to --method vi, mc-dropout and ensemble, not %s",
                             adv_s, method);
        if (mk == SK_BAYES_VI && adv_kind != SK_ADV_PGD && adv_kind != SK_ADV_FGSM)
            return cli_usage("--adv %s with --method vi: Bayes by Backprop trains with --adv pgd or fgsm only", adv_s);
        if (adv_eot == 0 || adv_eot < -1) return cli_usage("--adv-eot %d must be >= 1", adv_eot);
        if (adv_eot > 1 && mk == SK_BAYES_ENSEMBLE && !strstr(arch, "dropout"))
            return cli_usage("--adv-eot %d: ensemble members without dropout are deterministic; EOT applies to vi and "
                             "mc-dropout", adv_eot);
        advc.steps = sk_adv_single_step((enum sk_adv_kind)adv_kind) ? 1 : adv_steps;
        advc.step = adv_step;
        advc.trades_beta = adv_beta;
        advc.eot = adv_eot > 0 ? adv_eot : (mk == SK_BAYES_ENSEMBLE ? 1 : 4);
        if (sk_adv_check(&advc)) return cli_usage("%s", sk_last_error());
    } else if (adv_eot != -1 || !isnan(adv_eps) || adv_step != 0 || !isnan(clip_min) || !isnan(clip_max)) {
        return cli_usage("--adv-eps, --adv-step-size, --adv-eot and --clip-min/--clip-max need --adv pgd|fgsm|trades|ibp|fgsm-mix|n-fgsm|fgsm-ep|nuat");
    }
    if (c.threads) sk_set_threads(c.threads);
    struct sk_dataset *all = cli_load_data(&c, "train"), *tr = NULL, *va = NULL;
    if (!all) return cli_fail_lib();
    struct sk_model *m = sk_model_from_spec(arch);
    struct sk_posterior *p = NULL;
    int status = CLI_FAIL;
    if (!m) {
        status = cli_fail("--arch: %s", sk_last_error());
        goto out;
    }
    if (all->dim != m->in_dim) {
        status = cli_fail("%s has %d values per row, the model takes %d", c.data, all->dim, m->in_dim);
        goto out;
    }
    if (all->n_classes > m->n_classes) {
        status = cli_fail("%s has %d classes but --arch '%s' outputs %d scores%s", c.data, all->n_classes, arch,
                          m->n_classes, c.classes ? "" : " (select classes with --classes)");
        goto out;
    }
    /* classes, split and preprocessing travel in the posterior file (the data stay raw) */
    if (cli_record_training_data(m, &c, all, (enum sk_prep_kind)pk)) {
        status = cli_fail_lib();
        goto out;
    }
    if (adv_kind != SK_ADV_NONE) {
        int brc = cli_input_box("train", c.data, all, clip_min, clip_max, false, &advc.clip_lo, &advc.clip_hi);
        if (brc) {
            status = brc;
            goto out;
        }
    }
    if (val_split > 0) {
        if (sk_data_split(all, val_split, seed, &tr, &va)) {
            status = cli_fail_lib();
            goto out;
        }
    } else {
        tr = all;
        all = NULL;
    }
    sk_model_init(m, SK_INIT_HE_UNIFORM, seed);
    if (!(p = sk_posterior_new(m, (enum sk_bayes_method)mk))) {
        sk_model_free(m);
        status = cli_fail_lib();
        goto out;
    }
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = batch;
    cfg.seed = seed;
    cfg.opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg.opt.lr = lr;
    cfg.on_epoch = on_epoch;
    switch (mk) {
    case SK_BAYES_VI: {
        struct sk_vi_config vc = sk_vi_defaults();
        vc.prior = strcmp(prior, "mixture") ? SK_PRIOR_GAUSSIAN : SK_PRIOR_MIXTURE;
        vc.prior_sigma = prior_sigma;
        vc.init_sigma = init_sigma;
        vc.kl_weight = kl_weight;
        vc.anneal_epochs = anneal;
        vc.local_reparam = !no_lrt;
        if (flipout || no_flipout) vc.flipout = flipout;
        vc.adv = adv_kind != SK_ADV_NONE ? &advc : NULL;
        cfg.opt.sched = SK_SCHED_COSINE;
        cfg.opt.min_lr = lr * 0.05f;
        rc = sk_bayes_train_vi(p, &cfg, &vc, tr->x, tr->y, tr->n);
        break;
    }
    case SK_BAYES_ENSEMBLE:
        rc = sk_bayes_train_ensemble_adv(p, members, SK_INIT_HE_UNIFORM, &cfg, &advc, tr->x, tr->y, tr->n);
        break;
    case SK_BAYES_SGLD: {
        rc = sk_train(m, &cfg, tr->x, tr->y, tr->n);
        struct sk_sgld_config sc = sk_sgld_defaults();
        sc.burnin_epochs = 1;
        sc.thin = thin;
        sc.n_keep = keep;
        sc.cycles = cycles;
        sc.prior_sigma = sgld_prior;
        struct sk_train_config s = cfg;
        s.epochs = burnin + 1 > 2 ? burnin + 1 : 2;
        s.opt.lr = sgld_lr;
        if (!rc) rc = sk_bayes_train_sgld(p, &s, &sc, tr->x, tr->y, tr->n);
        break;
    }
    case SK_BAYES_LAPLACE: {
        rc = sk_train(m, &cfg, tr->x, tr->y, tr->n);
        struct sk_laplace_config lc = sk_laplace_defaults();
        lc.hessian = strcmp(hessian, "full") ? SK_LAPLACE_KFAC : SK_LAPLACE_FULL;
        lc.prior_precision = prior_precision;
        lc.probit = probit;
        if (!rc) rc = sk_bayes_fit_laplace(p, &lc, tr->x, tr->y, tr->n, NULL, NULL, 0);
        if (!rc) fprintf(stderr, "laplace: prior precision %g\n", p->prior_precision);
        break;
    }
    case SK_BAYES_MCDROPOUT: rc = sk_adv_train(m, &cfg, &advc, tr->x, tr->y, tr->n, NULL); break; /* none: sk_train */
    default: rc = sk_train(m, &cfg, tr->x, tr->y, tr->n); break;
    }
    if (!rc && temperature) {
        float T;
        rc = sk_posterior_fit_temperature(p, va->x, va->y, va->n, 20, seed, &T);
        if (!rc) fprintf(stderr, "temperature %.4f\n", T);
    }
    if (!rc) rc = sk_posterior_save(p, out);
    if (rc) {
        status = cli_fail_lib();
        goto out;
    }
    fprintf(stderr, "wrote %s (%s)\n", out, sk_bayes_method_name(p->method));
    status = CLI_OK;
out:
    sk_posterior_free(p);
    sk_dataset_free(all);
    sk_dataset_free(tr);
    sk_dataset_free(va);
    return status;
}
