/* `skeptic train --method M`: Bayesian training (reached from cmd_train.c
 * when --method is given and is not "deterministic"). One posterior file
 * per run, loadable by eval, compare and the library (sk_bayes_load). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "cli/train_report.h"
#include "skeptic/bayes.h"
#include "skeptic/robust.h"

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

/* The options of a Bayesian training run. */
struct bayes_args {
    const char *arch, *out, *method, *prior, *hessian, *normalize, *adv_s;
    int epochs, batch, members, anneal, burnin, thin, keep, cycles, adv_steps, adv_eot;
    float lr, sgld_lr, prior_sigma, init_sigma, kl_weight, val_split, sgld_prior, prior_precision;
    float adv_eps, adv_step, adv_beta, clip_min, clip_max;
    uint64_t seed;
    bool temperature, probit, no_lrt, flipout, no_flipout;
    int method_kind, prep_kind, adv_kind; /* parsed from the strings */
    struct sk_robust_config advc;
};

/* The flags that set the adversarial-training fields the library names. */
static const struct cli_field_flag adv_flags[] = {
    { "adv.eps", "--adv-eps" }, { "adv.steps", "--adv-steps" }, { "adv.step", "--adv-step-size" },
    { "adv.trades_beta", "--adv-beta" }, { "adv.eot", "--adv-eot" }, { "adv.kind", "--adv" }, { NULL, NULL },
};

/* --adv and its options into a->advc (checked by sk_robust_check). */
static int check_adv(struct bayes_args *a)
{
    int mk = a->method_kind, ak = a->adv_kind = sk_robust_kind_parse(a->adv_s);
    if (ak < 0) return cli_usage("--adv '%s' is not none, pgd, fgsm, trades, ibp, fgsm-mix, n-fgsm, fgsm-ep or nuat", a->adv_s);
    a->advc = sk_robust_defaults((enum sk_robust_kind)ak,
                                 isnan(a->adv_eps) ? (ak == SK_ROBUST_FGSM_MIX ? 0.01f : 0.1f) : a->adv_eps);
    if (ak == SK_ROBUST_NONE) {
        if (a->adv_eot != -1 || !isnan(a->adv_eps) || a->adv_step != 0 || !isnan(a->clip_min) || !isnan(a->clip_max))
            return cli_usage("--adv-eps, --adv-step-size, --adv-eot and --clip-min/--clip-max need --adv "
                             "pgd|fgsm|trades|ibp|fgsm-mix|n-fgsm|fgsm-ep|nuat");
        return CLI_OK;
    }
    if (mk != SK_BAYES_VI && mk != SK_BAYES_MCDROPOUT && mk != SK_BAYES_ENSEMBLE)
        return cli_usage("--adv %s: adversarial training applies to --method vi, mc-dropout and ensemble, not %s",
                         a->adv_s, a->method);
    if (mk == SK_BAYES_VI && ak != SK_ROBUST_PGD && ak != SK_ROBUST_FGSM)
        return cli_usage("--adv %s with --method vi: Bayes by Backprop trains with --adv pgd or fgsm only", a->adv_s);
    if (a->adv_eot == 0 || a->adv_eot < -1) return cli_usage("--adv-eot %d must be >= 1", a->adv_eot);
    if (a->adv_eot > 1 && mk == SK_BAYES_ENSEMBLE && !strstr(a->arch, "dropout"))
        return cli_usage("--adv-eot %d: ensemble members without dropout are deterministic; EOT applies to vi and "
                         "mc-dropout", a->adv_eot);
    a->advc.steps = sk_robust_single_step((enum sk_robust_kind)ak) ? 1 : a->adv_steps;
    a->advc.step = a->adv_step;
    a->advc.trades_beta = a->adv_beta;
    a->advc.eot = a->adv_eot > 0 ? a->adv_eot : (mk == SK_BAYES_ENSEMBLE ? 1 : 4);
    return sk_robust_check(&a->advc) ? cli_usage_lib(adv_flags) : CLI_OK;
}

static int check_args(const struct cli_common *c, struct bayes_args *a)
{
    if (!c->data) return cli_usage("--data D is required");
    if (!a->arch) return cli_usage("--arch SPEC is required");
    if (!a->out) return cli_usage("--out FILE is required");
    const struct cli_path outs[] = { { "--out", a->out, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--data", c->data, false }, { "--labels", c->labels, false }, { NULL, NULL, false } };
    int orc = cli_check_outputs(outs, ins);
    if (orc) return orc;
    a->prep_kind = sk_prep_kind_parse(a->normalize);
    if (a->prep_kind < 0) return cli_usage("--normalize '%s' is not none, minmax or standardize", a->normalize);
    if (c->classes) {
        int cl[1024], k, rc = cli_parse_classes(c->classes, cl, 1024, &k);
        if (rc) return rc;
    }
    a->method_kind = a->method ? sk_bayes_method_parse(a->method) : -1;
    if (a->method_kind < 0)
        return cli_usage("--method '%s' is not vi, mc-dropout, ensemble, sgld, laplace or deterministic",
                         a->method ? a->method : "");
    if (a->epochs < 1 || a->batch < 1 || a->members < 1 || a->burnin < 0 || a->thin < 1 || a->keep < 1 || a->cycles < 0)
        return cli_usage("--epochs, --batch, --members, --sgld-thin, --sgld-keep must be >= 1");
    if (!(a->lr > 0) || !(a->sgld_lr > 0)) return cli_usage("--lr and --sgld-lr must be positive");
    if (!(a->val_split >= 0 && a->val_split < 1)) return cli_usage("--val-split must be in [0,1)");
    if (a->temperature && a->val_split <= 0) return cli_usage("--temperature needs --val-split");
    if (a->flipout && a->no_flipout) return cli_usage("--flipout and --no-flipout contradict each other");
    if (strcmp(a->prior, "gaussian") && strcmp(a->prior, "mixture")) return cli_usage("--prior must be gaussian or mixture");
    if (strcmp(a->hessian, "kfac") && strcmp(a->hessian, "full")) return cli_usage("--hessian must be kfac or full");
    return check_adv(a);
}

/* The training rows (and --val-split's rows), the posterior of a model of
 * --arch that records them, initialised. */
static int build(const struct cli_common *c, struct bayes_args *a, struct sk_dataset **tr, struct sk_dataset **va,
                 struct sk_posterior **p)
{
    struct sk_dataset *all = cli_load_data(c, "train");
    if (!all) return cli_fail_lib();
    struct sk_model *m = sk_model_from_spec(a->arch);
    int status = CLI_FAIL;
    if (!m) status = cli_fail("--arch: %s", sk_last_error());
    else if (all->dim != m->in_dim)
        status = cli_fail("%s has %d values per row, the model takes %d", c->data, all->dim, m->in_dim);
    else if (all->n_classes > m->n_classes)
        status = cli_fail("%s has %d classes but --arch '%s' outputs %d scores%s", c->data, all->n_classes, a->arch,
                          m->n_classes, c->classes ? "" : " (select classes with --classes)");
    /* classes, split and preprocessing travel in the posterior file (the data stay raw) */
    else if (cli_record_training_data(m, c, all, (enum sk_prep_kind)a->prep_kind)) status = cli_fail_lib();
    else if (a->adv_kind != SK_ROBUST_NONE)
        status = cli_input_box("train", c->data, all, a->clip_min, a->clip_max, false, &a->advc.clip_lo,
                               &a->advc.clip_hi);
    else status = CLI_OK;
    if (!status && a->val_split > 0) {
        if (sk_data_split(all, a->val_split, a->seed, tr, va)) status = cli_fail_lib();
    } else if (!status) {
        *tr = all;
        all = NULL;
    }
    sk_dataset_free(all);
    if (!status) {
        sk_model_init(m, SK_INIT_HE_UNIFORM, a->seed);
        if (!(*p = sk_bayes_new(m, (enum sk_bayes_method)a->method_kind))) status = cli_fail_lib();
    }
    if (status && !*p) sk_model_free(m);
    return status;
}

/* Train p by its method; returns a library status. */
static int fit(const struct bayes_args *a, struct sk_posterior *p, const struct sk_dataset *tr,
               struct cli_train_report *rep)
{
    struct sk_bayes_train_config bc = sk_bayes_train_defaults();
    struct sk_train_config *cfg = &bc.train;
    cfg->epochs = a->epochs;
    cfg->batch = a->batch;
    cfg->seed = a->seed;
    cfg->opt = sk_optim_defaults(SK_OPT_ADAM);
    cfg->opt.lr = a->lr;
    cfg->on_epoch = cli_train_on_epoch;
    cfg->on_batch = cli_train_on_batch;
    cfg->ctx = rep;
    cfg->stop = &cli_interrupted;
    if (a->method_kind == SK_BAYES_SGLD || a->method_kind == SK_BAYES_LAPLACE) rep->phase = "warm start";
    if (a->method_kind == SK_BAYES_SGLD) {
        rep->next_phase = "sampling";
        rep->next_epochs = a->burnin + 1 > 2 ? a->burnin + 1 : 2;
    }
    const struct sk_robust_config *adv = &a->advc; /* kind none: plain training */
    bc.members = a->members;
    switch (a->method_kind) {
    case SK_BAYES_VI:
        bc.vi.prior = strcmp(a->prior, "mixture") ? SK_PRIOR_GAUSSIAN : SK_PRIOR_MIXTURE;
        bc.vi.prior_sigma = a->prior_sigma;
        bc.vi.init_sigma = a->init_sigma;
        bc.vi.kl_weight = a->kl_weight;
        bc.vi.anneal_epochs = a->anneal;
        bc.vi.local_reparam = !a->no_lrt;
        if (a->flipout || a->no_flipout) bc.vi.flipout = a->flipout;
        cfg->opt.sched = SK_SCHED_COSINE;
        cfg->opt.min_lr = a->lr * 0.05f;
        break;
    case SK_BAYES_SGLD:
        adv = NULL; /* the warm start is plain */
        bc.sgld.burnin_epochs = 1;
        bc.sgld.thin = a->thin;
        bc.sgld.n_keep = a->keep;
        bc.sgld.cycles = a->cycles;
        bc.sgld.prior_sigma = a->sgld_prior;
        bc.sgld_train = *cfg;
        bc.sgld_train.epochs = a->burnin + 1 > 2 ? a->burnin + 1 : 2;
        bc.sgld_train.opt.lr = a->sgld_lr;
        break;
    case SK_BAYES_LAPLACE:
        adv = NULL;
        bc.laplace.hessian = strcmp(a->hessian, "full") ? SK_LAPLACE_KFAC : SK_LAPLACE_FULL;
        bc.laplace.prior_precision = a->prior_precision;
        bc.laplace.probit = a->probit;
        break;
    case SK_BAYES_MCDROPOUT: case SK_BAYES_ENSEMBLE: break;
    default: adv = NULL; break;
    }
    int rc = sk_robust_train_bayes(p, &bc, adv, tr->x, tr->y, tr->n);
    if (!rc && !cli_interrupted && a->method_kind == SK_BAYES_LAPLACE && cli_verbosity >= 0)
        fprintf(stderr, "laplace: prior precision %g\n", p->prior_precision);
    return rc;
}

/* Accuracy and loss of the predictive on the test split (NaN without one). */
static int test_figures(const struct cli_common *c, struct sk_posterior *p, uint64_t seed, struct cli_train_summary *s)
{
    s->test_acc = s->test_loss = NAN;
    if (c->split) return CLI_OK;
    struct sk_dataset *te = cli_load_data(c, "test");
    if (!te) {
        if (strstr(sk_last_error(), "out of memory")) return cli_fail_lib();
        sk_error_clear();
        return CLI_OK;
    }
    int K = p->model->n_classes, rc = CLI_OK;
    float *pb = te->n > 0 ? sk_malloc(sizeof(float) * (size_t)te->n * K) : NULL;
    if (te->n > 0 && (!pb || sk_bayes_predict(p, te->x, te->n, 0, seed, pb, NULL))) rc = cli_fail_lib();
    else if (te->n > 0) {
        double nll = 0;
        long ok = 0;
        for (int i = 0; i < te->n; i++) {
            const float *q = pb + (size_t)i * K;
            int b = 0;
            for (int k = 1; k < K; k++) b = q[k] > q[b] ? k : b;
            ok += b == te->y[i];
            nll -= log(fmax(q[te->y[i]], 1e-30));
        }
        s->test_rows = te->n;
        s->test_correct = ok;
        s->test_acc = (double)ok / te->n;
        s->test_loss = nll / te->n;
    }
    sk_free(pb);
    sk_dataset_free(te);
    return rc;
}

static int train_bayes(const struct cli_common *c, struct bayes_args *a)
{
    struct sk_dataset *tr = NULL, *va = NULL;
    struct sk_posterior *p = NULL;
    struct cli_train_report rep;
    cli_train_report_init(&rep, a->epochs, a->method_kind == SK_BAYES_ENSEMBLE ? a->members : 1);
    int status = build(c, a, &tr, &va, &p);
    double t0 = sk_now();
    if (!status) {
        cli_interrupt_arm();
        int rc = fit(a, p, tr, &rep);
        cli_progress_clear(&rep.prog);
        if (!rc && cli_interrupted) {
            /* a posterior cut short is no posterior of its method: nothing is written */
            char what[512];
            snprintf(what, sizeof what, "no posterior written (--method %s has no checkpoint to resume from): rerun "
                     "to train it, with fewer --epochs for a shorter run", a->method);
            cli_train_interrupted(&rep, rep.last_epoch < 0 ? 0 : rep.last_epoch, rep.last_batch, -1, what);
            cli_interrupt_disarm();
            status = CLI_INTERRUPTED;
            goto out;
        }
        cli_interrupt_disarm();
        if (!rc && a->temperature) {
            float T;
            rc = sk_bayes_fit_temperature(p, va->x, va->y, va->n, 20, a->seed, &T);
            if (!rc && cli_verbosity >= 0) fprintf(stderr, "temperature %.4f\n", T);
        }
        if (!rc) rc = sk_bayes_save(p, a->out);
        if (rc) status = cli_fail_lib();
    }
    if (!status) {
        struct cli_train_summary s = {
            .out = a->out, .arch = a->arch, .method = sk_bayes_method_name(p->method), .params = p->model->n_params,
            .epochs_run = rep.epochs_run, .train_rows = tr->n, .val_rows = va ? va->n : 0,
            .train_loss = rep.last.train_loss, .train_acc = rep.last.train_acc, .val_loss = NAN,
            .seconds = sk_now() - t0, .weights_hash = sk_model_weights_hash(p->model),
        };
        status = test_figures(c, p, a->seed, &s);
        if (!status && c->json) cli_json_print(cli_train_summary_json(&s));
        else if (!status) cli_train_summary_print(&s);
    }
out:
    sk_bayes_free(p);
    sk_dataset_free(tr);
    sk_dataset_free(va);
    return status;
}

int cli_train_bayes(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct bayes_args a = {
        .prior = "gaussian", .hessian = "kfac", .normalize = "none", .adv_s = "none", .epochs = 10, .batch = 128,
        .members = 5, .burnin = 1, .thin = 100, .keep = 20, .lr = 1e-3f, .sgld_lr = 0.01f, .prior_sigma = 1.0f,
        .init_sigma = 0.02f, .kl_weight = 1.0f, .sgld_prior = 1.0f, .seed = 1, .adv_eps = NAN, .adv_beta = 6,
        .clip_min = NAN, .clip_max = NAN, .adv_steps = 10, .adv_eot = -1,
    };
    struct cli_opt opts[] = {
        CLI_DATA_OPTS(c), CLI_THREADS_OPT(c), CLI_JSON_OPT(c),
        { "method", CLI_STR, &a.method, "M", "vi | mc-dropout | ensemble | sgld | laplace | deterministic" },
        { "arch", CLI_STR, &a.arch, "SPEC", "architecture (mc-dropout: with dropout, e.g. mlp:784-400-400-10:relu:dropout0.2)" },
        { "out", CLI_STR, &a.out, "FILE", "posterior file to write (.safetensors, atomically)" },
        { "epochs", CLI_INT, &a.epochs, "E", "epochs (vi, mc-dropout, ensemble members; sgld/laplace: of the warm start) (default 10)" },
        { "batch", CLI_INT, &a.batch, "B", "minibatch (default 128)" },
        { "lr", CLI_FLOAT, &a.lr, "LR", "Adam learning rate (default 1e-3; vi: cosine schedule)" },
        { "seed", CLI_U64, &a.seed, "S", "seed (default 1)" },
        { "normalize", CLI_STR, &a.normalize, "K", "none | minmax | standardize (statistics from the training split, saved in the model)" },
        { "val-split", CLI_FLOAT, &a.val_split, "F", "held-out fraction for --temperature and laplace --select-on-val" },
        { "temperature", CLI_FLAG, &a.temperature, NULL, "fit a temperature on the validation split afterwards" },
        { "members", CLI_INT, &a.members, "M", "ensemble members (default 5)" },
        { "prior", CLI_STR, &a.prior, "P", "vi prior: gaussian | mixture (default gaussian)" },
        { "prior-sigma", CLI_FLOAT, &a.prior_sigma, "S", "vi Gaussian prior scale (default 1)" },
        { "init-sigma", CLI_FLOAT, &a.init_sigma, "S", "vi initial posterior scale (default 0.02)" },
        { "kl-weight", CLI_FLOAT, &a.kl_weight, "B", "vi KL weight (default 1)" },
        { "kl-anneal", CLI_INT, &a.anneal, "E", "vi: ramp the KL weight up over E epochs (default 0)" },
        { "no-local-reparam", CLI_FLAG, &a.no_lrt, NULL, "vi: sample weights per minibatch instead of the local trick" },
        { "flipout", CLI_FLAG, &a.flipout, NULL, "vi: Flipout where the local trick does not apply (CNNs): lower-variance gradients, 2.4x the time" },
        { "no-flipout", CLI_FLAG, &a.no_flipout, NULL, "vi: one weight draw per minibatch where the local trick does not apply (the default)" },
        { "sgld-epochs", CLI_INT, &a.burnin, "E", "sgld burn-in epochs (default 1)" },
        { "sgld-lr", CLI_FLOAT, &a.sgld_lr, "LR", "sgld step size on the mean loss (default 0.01)" },
        { "sgld-thin", CLI_INT, &a.thin, "K", "sgld: keep every K-th step (default 100)" },
        { "sgld-keep", CLI_INT, &a.keep, "N", "sgld: samples kept (default 20)" },
        { "sgld-cycles", CLI_INT, &a.cycles, "C", "sgld: cyclical step size with C cycles (default 0 = constant)" },
        { "sgld-prior", CLI_FLOAT, &a.sgld_prior, "S", "sgld Gaussian prior scale (default 1)" },
        { "hessian", CLI_STR, &a.hessian, "H", "laplace: kfac | full (default kfac)" },
        { "prior-precision", CLI_FLOAT, &a.prior_precision, "D", "laplace prior precision (default: marginal likelihood)" },
        { "probit", CLI_FLAG, &a.probit, NULL, "laplace: probit predictive instead of Monte Carlo" },
        { "adv", CLI_STR, &a.adv_s, "K", "adversarial training (vi, mc-dropout, ensemble): none | pgd | fgsm | trades | ibp | "
          "fgsm-mix | n-fgsm | fgsm-ep | nuat (vi: pgd or fgsm only; fgsm-mix = CE(x) + CE(x + eps sign grad), Lakshminarayanan et al.)" },
        { "adv-eps", CLI_FLOAT, &a.adv_eps, "E", "L-inf radius of the adversarial training, in the data's units (default 0.1; fgsm-mix 0.01)" },
        { "adv-steps", CLI_INT, &a.adv_steps, "K", "inner PGD steps for pgd/trades (default 10)" },
        { "adv-step-size", CLI_FLOAT, &a.adv_step, "A", "inner step size (default 2.5 eps/steps; fgsm 1.25 eps; fgsm-mix eps)" },
        { "adv-beta", CLI_FLOAT, &a.adv_beta, "B", "TRADES weight of the KL term (default 6)" },
        CLI_BOX_OPTS(a.clip_min, a.clip_max),
        { "adv-eot", CLI_INT, &a.adv_eot, "S", "EOT samples per inner step: vi weight draws / mc-dropout masks (default 4; "
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
        "mc-dropout by the MC-mode attack over --adv-eot masks; ensemble members each by sk_robust_train.",
        "skeptic train --method vi --data fashion-mnist --arch mlp:784-400-400-10:relu --epochs 20 --out bbb.safetensors\n"
        "skeptic train --method ensemble --members 5 --data fashion-mnist --arch mlp:784-400-400-10:relu --out ens.safetensors\n"
        "skeptic train --method vi --data fashion-mnist --arch mlp:784-400-400-10:relu --adv pgd --adv-eps 0.1 --adv-steps 5 --adv-eot 4 --out bbb-pgd.safetensors\n"
        "skeptic train --method ensemble --data fashion-mnist --arch mlp:784-400-400-10:relu --adv fgsm-mix --out ens-adv.safetensors",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if ((rc = check_args(&c, &a))) return rc;
    return train_bayes(&c, &a);
}
