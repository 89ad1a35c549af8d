/* skeptic compare: the seed's experiment 3 in one command. A deterministic
 * network and its Bayesian counterparts of the same architecture, trained on
 * the same data (or loaded from --dir), judged on the same test rows, the
 * same out-of-distribution rows and the same adversarial attacks (FGSM and
 * PGD through the classifier seam, with EOT over the method's samples). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "skeptic/attack.h"
#include "skeptic/bayes.h"

#define MAX_METHODS 8

struct row {
    char name[32];
    double train_s;
    struct sk_bayes_report rep;
    double fgsm_acc, pgd_acc;
    struct sk_detection adv_mi, adv_ent; /* over the adv_n attacked rows that were right before the attack */
    int adv_n;
    int samples;
    float temperature;
};

struct cmp {
    const char *arch, *methods, *ood, *dir, *prior;
    int epochs, ens_epochs, vi_epochs, batch, members, samples, attack_samples, n_adv, pgd_steps, sgld_epochs;
    float lr, vi_lr, sgld_lr, kl_weight, eps, val_fraction, dropout, prior_sigma, init_sigma;
    float clip_min, clip_max; /* the attacks' input box */
    uint64_t seed;
    bool flipout, no_flipout;
    const struct cli_common *c; /* the data options: what the models record and are checked against */
};

static const char *preset(const char *arch, bool dropout, float p, char *buf, size_t cap)
{
    if (!strcmp(arch, "mlp")) {
        if (dropout) snprintf(buf, cap, "mlp:784-400-400-10:relu:dropout%g", p);
        else snprintf(buf, cap, "mlp:784-400-400-10:relu");
    } else if (!strcmp(arch, "cnn")) {
        if (dropout)
            snprintf(buf, cap, "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dropout%g-"
                     "dense128-relu-dropout%g-dense10", p, p);
        else
            snprintf(buf, cap, "cnn:1x28x28-conv32k3p1-relu-maxpool2-conv64k3p1-relu-maxpool2-flatten-dense128-relu-dense10");
    } else {
        snprintf(buf, cap, "%s", arch);
    }
    return buf;
}

static struct sk_train_config train_cfg(const struct cmp *o, int epochs, float lr)
{
    struct sk_train_config c = sk_train_defaults();
    c.epochs = epochs;
    c.batch = o->batch;
    c.seed = o->seed;
    c.opt = sk_optim_defaults(SK_OPT_ADAM);
    c.opt.lr = lr;
    return c;
}

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    fprintf(stderr, "  [%s] epoch %d loss %.4f acc %.4f (%.1f s, %.0f samples/s)\n", (const char *)ctx, em->epoch + 1,
            em->train_loss, em->train_acc, em->seconds, em->samples_per_s);
    return 0;
}

/* Train (or load from dir) one method. Returns an owned posterior or NULL. */
/* The deterministic network of this run (trained or loaded first), reused
 * as the starting point of temperature scaling, Laplace and SGLD. */
static struct sk_model *base_net;

/* Train the base network or copy it into m. */
static int base_weights(const struct cmp *o, struct sk_model *m, struct sk_train_config *c, const struct sk_dataset *tr)
{
    if (base_net && !strcmp(base_net->spec, m->spec)) {
        fprintf(stderr, "  (starting from the deterministic network of this run)\n");
        return sk_model_copy_weights(m, base_net);
    }
    (void)o;
    int rc = sk_train(m, c, tr->x, tr->y, tr->n);
    if (!rc && !base_net) {
        base_net = sk_model_clone(m);
    }
    return rc;
}

/* A file from --dir must fit the data compare judges it on: the same class
 * selection and split as recorded in it, the same row length, and labels
 * inside its classes (its preprocessing is its own: it takes raw data). */
static int check_loaded(const struct cmp *o, const struct sk_posterior *p, const struct sk_dataset *tr,
                        const char *path)
{
    const struct sk_model *m = p->model;
    uint64_t seed = o->c->data_seed ? o->c->data_seed : 1;
    float frac = o->c->test_fraction > 0 ? o->c->test_fraction : 0.2f;
    if (m->data.has_split && sk_data_split_by_seed(o->c->data) &&
        (m->data.data_seed != seed || m->data.test_fraction != frac))
        return sk_error(SK_EINVAL, "%s was trained on the split of data seed %llu, test fraction %g; compare splits %s "
                        "with seed %llu, fraction %g, so its test rows would include the file's training rows: give "
                        "--data-seed %llu --test-fraction %g",
                        path, (unsigned long long)m->data.data_seed, m->data.test_fraction, o->c->data,
                        (unsigned long long)seed, frac, (unsigned long long)m->data.data_seed, m->data.test_fraction);
    const char *asked = o->c->classes ? o->c->classes : "";
    if (strcmp(m->data.classes, asked))
        return sk_error(SK_EINVAL, "%s was trained on classes %s; compare runs on %s: give --classes %s or leave the "
                        "file out", path, m->data.classes, *asked ? asked : "all classes", m->data.classes);
    if (m->in_dim != tr->dim)
        return sk_error(SK_EINVAL, "%s takes %d values per row; %s has %d", path, m->in_dim, o->c->data, tr->dim);
    if (tr->n_classes > m->n_classes)
        return sk_error(SK_EINVAL, "%s outputs %d classes; the data have %d", path, m->n_classes, tr->n_classes);
    return SK_OK;
}

static struct sk_posterior *make(const struct cmp *o, const char *method, const struct sk_dataset *tr,
                                 const struct sk_dataset *va, double *secs)
{
    char path[1024] = "", spec[512];
    if (o->dir) {
        snprintf(path, sizeof path, "%s/%s.safetensors", o->dir, method);
        struct stat st;
        if (!stat(path, &st)) {
            fprintf(stderr, "compare: loading %s\n", path);
            *secs = NAN;
            struct sk_posterior *lp = sk_posterior_load(path);
            if (lp && check_loaded(o, lp, tr, path)) {
                sk_posterior_free(lp);
                return NULL;
            }
            if (lp && lp->method == SK_BAYES_DETERMINISTIC && !base_net && lp->temperature == 1.0f)
                base_net = sk_model_clone(lp->model);
            return lp;
        }
    }
    bool is_temp = !strcmp(method, "temperature");
    int mk = is_temp ? SK_BAYES_DETERMINISTIC : sk_bayes_method_parse(method);
    if (mk < 0) {
        sk_error(SK_EINVAL, "unknown method '%s' in --methods (deterministic, temperature, mc-dropout, ensemble, vi, "
                 "sgld, laplace)", method);
        return NULL;
    }
    struct sk_model *m = sk_model_from_spec(preset(o->arch, mk == SK_BAYES_MCDROPOUT, o->dropout, spec, sizeof spec));
    if (!m) return NULL;
    if (m->in_dim != tr->dim || m->n_classes < tr->n_classes || cli_record_training_data(m, o->c, tr, SK_PREP_NONE)) {
        if (!sk_last_error()[0] || m->in_dim != tr->dim || m->n_classes < tr->n_classes)
            sk_error(SK_EINVAL, "--arch '%s' takes %d values and outputs %d classes; %s has %d values and %d classes",
                     spec, m->in_dim, m->n_classes, o->c->data, tr->dim, tr->n_classes);
        sk_model_free(m);
        return NULL;
    }
    sk_model_init(m, SK_INIT_HE_UNIFORM, o->seed);
    struct sk_posterior *p = sk_posterior_new(m, (enum sk_bayes_method)mk);
    if (!p) {
        sk_model_free(m);
        return NULL;
    }
    fprintf(stderr, "compare: training %s (%s)\n", method, spec);
    double t0 = sk_now();
    struct sk_train_config c = train_cfg(o, o->epochs, o->lr);
    c.on_epoch = on_epoch;
    c.ctx = (void *)method;
    int rc = SK_OK;
    switch (mk) {
    case SK_BAYES_VI: {
        struct sk_vi_config vc = sk_vi_defaults();
        vc.prior_sigma = o->prior_sigma;
        vc.init_sigma = o->init_sigma;
        vc.kl_weight = o->kl_weight;
        if (o->prior && !strcmp(o->prior, "mixture")) vc.prior = SK_PRIOR_MIXTURE;
        if (o->flipout || o->no_flipout) vc.flipout = o->flipout;
        c = train_cfg(o, o->vi_epochs, o->vi_lr);
        c.opt.sched = SK_SCHED_COSINE;
        c.opt.min_lr = o->vi_lr * 0.05f;
        c.on_epoch = on_epoch;
        c.ctx = (void *)method;
        rc = sk_bayes_train_vi(p, &c, &vc, tr->x, tr->y, tr->n);
        break;
    }
    case SK_BAYES_ENSEMBLE:
        if (o->ens_epochs > 0) c.epochs = o->ens_epochs;
        rc = sk_bayes_train_ensemble(p, o->members, SK_INIT_HE_UNIFORM, &c, tr->x, tr->y, tr->n); break;
    case SK_BAYES_SGLD: {
        /* warm start from a trained network, then Langevin dynamics */
        rc = base_weights(o, m, &c, tr);
        struct sk_sgld_config sc = sk_sgld_defaults();
        struct sk_train_config s = train_cfg(o, o->sgld_epochs, o->sgld_lr);
        s.on_epoch = on_epoch;
        s.ctx = (void *)method;
        long per_epoch = (tr->n + o->batch - 1) / o->batch;
        sc.burnin_epochs = 1;
        sc.n_keep = 20;
        sc.thin = (int)((per_epoch * (o->sgld_epochs - 1)) / sc.n_keep);
        if (sc.thin < 1) sc.thin = 1;
        if (!rc) rc = sk_bayes_train_sgld(p, &s, &sc, tr->x, tr->y, tr->n);
        break;
    }
    case SK_BAYES_LAPLACE: {
        rc = base_weights(o, m, &c, tr);
        struct sk_laplace_config lc = sk_laplace_defaults();
        if (!rc) rc = sk_bayes_fit_laplace(p, &lc, tr->x, tr->y, tr->n, va->x, va->y, va->n);
        if (!rc) fprintf(stderr, "  [laplace] prior precision %g\n", p->prior_precision);
        break;
    }
    default:
        rc = base_weights(o, m, &c, tr);
        break;
    }
    if (!rc && is_temp) {
        float T;
        rc = sk_posterior_fit_temperature(p, va->x, va->y, va->n, 1, o->seed, &T);
        if (!rc) fprintf(stderr, "  [temperature] T = %.3f\n", T);
    }
    *secs = sk_now() - t0;
    if (!rc && path[0]) rc = sk_posterior_save(p, path);
    if (rc) {
        sk_posterior_free(p);
        return NULL;
    }
    return p;
}

/* FGSM and PGD with EOT over the posterior's samples; accuracy judged by the
 * posterior's predictive with fresh samples; MI / entropy of the PGD points
 * against the clean ones. */
static int attack_row(const struct cmp *o, struct sk_posterior *p, const struct sk_dataset *te, struct row *r)
{
    int n = te->n < o->n_adv ? te->n : o->n_adv, D = te->dim, K = p->model->n_classes;
    int S_att = sk_posterior_n_samples(p, o->attack_samples);
    struct sk_classifier *c = sk_posterior_classifier(p, S_att, o->seed + 101);
    float *xa = sk_malloc(sizeof(float) * (size_t)n * D), *pb = sk_malloc(sizeof(float) * (size_t)n * K);
    float *mi_c = sk_malloc(sizeof(float) * (size_t)n), *mi_a = sk_malloc(sizeof(float) * (size_t)n);
    float *h_c = sk_malloc(sizeof(float) * (size_t)n), *h_a = sk_malloc(sizeof(float) * (size_t)n);
    bool *ok = sk_malloc(sizeof(bool) * (size_t)n);
    int rc = SK_ENOMEM;
    if (!c || !xa || !pb || !mi_c || !mi_a || !h_c || !h_a || !ok) goto out;
    if ((rc = sk_posterior_predict(p, te->x, n, o->samples, o->seed + 5, pb, mi_c))) goto out;
    sk_entropy_rows(pb, n, K, h_c);
    for (int i = 0; i < n; i++) {
        const float *q = pb + (size_t)i * K;
        int b = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[b]) b = k;
        ok[i] = b == te->y[i];
    }
    for (int a = 0; a < 2; a++) {
        struct sk_attack_config ac = sk_attack_defaults(a ? SK_ATTACK_PGD : SK_ATTACK_FGSM, SK_NORM_LINF, o->eps);
        if (a) ac.steps = o->pgd_steps;
        ac.seed = o->seed;
        ac.clip_min = o->clip_min;
        ac.clip_max = o->clip_max;
        if ((rc = sk_attack_run(c, &ac, te->x, te->y, NULL, n, xa, NULL))) goto out;
        if ((rc = sk_posterior_predict(p, xa, n, o->samples, o->seed + 6, pb, mi_a))) goto out;
        double acc = sk_metric_accuracy(pb, te->y, n, K);
        if (a) {
            r->pgd_acc = acc;
            sk_entropy_rows(pb, n, K, h_a);
            /* detection of adversarial inputs among the rows the model got right before the attack:
             * a row misclassified already is no adversarial example to detect */
            int nk = 0;
            for (int i = 0; i < n; i++)
                if (ok[i]) {
                    mi_a[nk] = mi_a[i];
                    mi_c[nk] = mi_c[i];
                    h_a[nk] = h_a[i];
                    h_c[nk] = h_c[i];
                    nk++;
                }
            r->adv_n = nk;
            if ((rc = sk_metric_detection(mi_a, nk, mi_c, nk, &r->adv_mi))) goto out;
            if ((rc = sk_metric_detection(h_a, nk, h_c, nk, &r->adv_ent))) goto out;
        } else {
            r->fgsm_acc = acc;
        }
    }
out:
    sk_classifier_free(c);
    sk_free(xa);
    sk_free(pb);
    sk_free(mi_c);
    sk_free(mi_a);
    sk_free(h_c);
    sk_free(h_a);
    sk_free(ok);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct cmp o = { 0 };
    o.arch = "mlp";
    o.methods = "deterministic,temperature,mc-dropout,ensemble,vi,sgld,laplace";
    o.ood = "mnist";
    o.epochs = 10;
    o.vi_epochs = 20;
    o.sgld_epochs = 5;
    o.batch = 128;
    o.members = 5;
    o.samples = 20;
    o.attack_samples = 10;
    o.n_adv = 500;
    o.pgd_steps = 10;
    o.lr = 1e-3f;
    o.vi_lr = 1e-3f;
    o.sgld_lr = 0.01f;
    o.eps = 0.1f;
    o.clip_min = o.clip_max = NAN;
    o.val_fraction = 1.0f / 12;
    o.dropout = 0.2f;
    o.prior_sigma = 0.1f;
    o.init_sigma = 0.02f;
    o.kl_weight = 1.0f;
    o.prior = "gaussian";
    o.seed = 1;
    o.c = &c;
    c.data = "fashion-mnist";
    int n_test = 0;
    struct cli_opt opts[] = {
        CLI_DATA_OPTS(c), CLI_THREADS_OPT(c), CLI_JSON_OPT(c),
        { "arch", CLI_STR, &o.arch, "A", "mlp (784-400-400-10) | cnn | a spec (default mlp)" },
        { "methods", CLI_STR, &o.methods, "LIST", "comma list of deterministic, temperature, mc-dropout, ensemble, vi, sgld, laplace" },
        { "ood", CLI_STR, &o.ood, "D", "out-of-distribution data set (default mnist; 'none' to skip)" },
        { "dir", CLI_STR, &o.dir, "DIR", "save models here as METHOD.safetensors; existing files are loaded, not retrained" },
        { "epochs", CLI_INT, &o.epochs, "E", "epochs of the deterministic nets and members (default 10)" },
        { "ensemble-epochs", CLI_INT, &o.ens_epochs, "E", "epochs of each ensemble member (default: --epochs)" },
        { "vi-epochs", CLI_INT, &o.vi_epochs, "E", "epochs of Bayes by Backprop (default 20)" },
        { "sgld-epochs", CLI_INT, &o.sgld_epochs, "E", "SGLD epochs after the warm start (default 5; 1 is burn-in)" },
        { "batch", CLI_INT, &o.batch, "B", "minibatch (default 128)" },
        { "lr", CLI_FLOAT, &o.lr, "LR", "Adam learning rate (default 1e-3)" },
        { "vi-lr", CLI_FLOAT, &o.vi_lr, "LR", "Adam learning rate of VI, cosine schedule (default 1e-3)" },
        { "sgld-lr", CLI_FLOAT, &o.sgld_lr, "LR", "SGLD step size on the mean loss (default 0.01)" },
        { "prior-sigma", CLI_FLOAT, &o.prior_sigma, "S", "VI Gaussian prior scale (default 0.1)" },
        { "prior", CLI_STR, &o.prior, "P", "VI prior: gaussian (N(0, prior-sigma^2)) | mixture (0.5 N(0,1) + 0.5 N(0,e^-12))" },
        { "kl-weight", CLI_FLOAT, &o.kl_weight, "B", "VI KL weight beta (default 1)" },
        { "init-sigma", CLI_FLOAT, &o.init_sigma, "S", "VI initial posterior scale (default 0.02)" },
        { "flipout", CLI_FLAG, &o.flipout, NULL, "VI: Flipout for the cnn and other non-MLP specs (lower-variance gradients, 2.4x the time)" },
        { "no-flipout", CLI_FLAG, &o.no_flipout, NULL, "VI: one weight draw per minibatch for non-MLP specs (the default)" },
        { "dropout", CLI_FLOAT, &o.dropout, "P", "MC dropout rate (default 0.2)" },
        { "members", CLI_INT, &o.members, "M", "ensemble members (default 5)" },
        { "samples", CLI_INT, &o.samples, "S", "posterior samples per prediction (default 20)" },
        { "attack-samples", CLI_INT, &o.attack_samples, "S", "EOT samples per attack gradient (default 10)" },
        { "n-adv", CLI_INT, &o.n_adv, "N", "test rows attacked (default 500; 0 = no attacks)" },
        { "eps", CLI_FLOAT, &o.eps, "E", "Linf budget of FGSM and PGD (default 0.1)" },
        CLI_BOX_OPTS(o.clip_min, o.clip_max),
        { "pgd-steps", CLI_INT, &o.pgd_steps, "K", "PGD steps (default 10)" },
        { "n-test", CLI_INT, &n_test, "N", "use only the first N test rows (default all)" },
        { "seed", CLI_U64, &o.seed, "S", "seed of everything (default 1)" },
        { 0 },
    };
    static const struct cli_help h = {
        "compare",
        "skeptic compare [--data fashion-mnist] [--ood mnist] [--arch mlp|cnn|SPEC] [options]",
        "Train a deterministic network and its Bayesian counterparts on the same data (or load them from --dir) and\n"
        "print one table: test accuracy, NLL, ECE, Brier, OOD AUROC (by entropy and by mutual information), accuracy\n"
        "under FGSM and PGD (Linf, with EOT over the method's samples) and the AUROC of telling PGD inputs from clean\n"
        "ones by mutual information. --n N limits the training rows. A validation split (1/12 of the training rows)\n"
        "serves temperature scaling and Laplace.",
        "skeptic compare --data fashion-mnist --ood mnist --arch mlp --dir runs/mlp\n"
        "skeptic compare --methods deterministic,vi --epochs 3 --vi-epochs 5 --n 10000 --n-adv 200 --json",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (c.threads) sk_set_threads(c.threads);
    if (o.epochs < 1 || o.vi_epochs < 1 || o.batch < 1 || o.members < 1 || o.samples < 1 || o.attack_samples < 1 ||
        o.n_adv < 0 || o.sgld_epochs < 2)
        return cli_usage("--epochs, --vi-epochs, --batch, --members, --samples and --attack-samples must be >= 1, "
                         "--sgld-epochs >= 2, --n-adv >= 0");
    if (o.flipout && o.no_flipout) return cli_usage("--flipout and --no-flipout contradict each other");
    if (strcmp(o.prior, "gaussian") && strcmp(o.prior, "mixture"))
        return cli_usage("--prior must be gaussian or mixture (got '%s')", o.prior);
    if (o.dir) mkdir(o.dir, 0777);
    struct sk_dataset *all = cli_load_data(&c, "train"), *tr = NULL, *va = NULL, *te = NULL, *ood = NULL;
    struct cli_common ct = c;
    ct.limit = n_test;
    struct row *rows = sk_calloc(MAX_METHODS, sizeof *rows);
    int n_rows = 0, status = CLI_FAIL;
    if (!all || !rows) {
        status = cli_fail_lib();
        goto out;
    }
    if (!(te = cli_load_data(&ct, "test"))) {
        status = cli_fail_lib();
        goto out;
    }
    if (strcmp(o.ood, "none") && !(ood = sk_data_open(o.ood, "all", NULL))) {
        status = cli_fail("%s (for MNIST run scripts/fetch-mnist or set SKEPTIC_MNIST_DIR; --ood none skips)",
                          sk_last_error());
        goto out;
    }
    float cmin = o.clip_min, cmax = o.clip_max;
    int brc = o.n_adv > 0 ? cli_input_box("compare", c.data, te, cmin, cmax, false, &o.clip_min, &o.clip_max) : CLI_OK;
    if (brc) {
        status = brc;
        goto out;
    }
    if (ood && ood->dim != te->dim) {
        status = cli_fail("--ood %s has %d values per row, the data %d", o.ood, ood->dim, te->dim);
        goto out;
    }
    if (sk_data_split(all, o.val_fraction, o.seed, &tr, &va)) {
        status = cli_fail_lib();
        goto out;
    }
    char list[512];
    snprintf(list, sizeof list, "%s", o.methods);
    for (char *tok = strtok(list, ","); tok && n_rows < MAX_METHODS; tok = strtok(NULL, ",")) {
        struct row *r = &rows[n_rows];
        snprintf(r->name, sizeof r->name, "%s", tok);
        struct sk_posterior *p = make(&o, tok, tr, va, &r->train_s);
        if (!p) {
            status = cli_fail_lib();
            goto out;
        }
        r->samples = sk_posterior_n_samples(p, o.samples);
        r->temperature = p->temperature;
        fprintf(stderr, "compare: evaluating %s (%d samples)\n", tok, r->samples);
        if (sk_bayes_report(p, te->x, te->y, te->n, ood ? ood->x : NULL, ood ? ood->n : 0, o.samples, o.seed, &r->rep) ||
            (o.n_adv > 0 && attack_row(&o, p, te, r))) {
            sk_posterior_free(p);
            status = cli_fail_lib();
            goto out;
        }
        if (o.n_adv == 0) r->fgsm_acc = r->pgd_acc = r->adv_mi.auroc = r->adv_ent.auroc = NAN;
        fprintf(stderr, "compare: | %s | %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", r->name,
                r->samples, r->rep.clean.accuracy, r->rep.clean.nll, r->rep.clean.ece, r->rep.clean.brier,
                ood ? r->rep.ood[SK_SCORE_ENTROPY].auroc : NAN, ood ? r->rep.ood[SK_SCORE_MI].auroc : NAN, r->fgsm_acc,
                r->pgd_acc, r->adv_mi.auroc);
        sk_posterior_free(p);
        n_rows++;
    }
    if (c.json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "data", c.data);
        cJSON_AddStringToObject(j, "ood", o.ood);
        cJSON_AddStringToObject(j, "arch", o.arch);
        cli_json_num(j, "eps", o.eps);
        cli_json_num(j, "n_test", te->n);
        cli_json_num(j, "n_adv", o.n_adv < te->n ? o.n_adv : te->n);
        cJSON *arr = cJSON_AddArrayToObject(j, "methods");
        for (int i = 0; i < n_rows; i++) {
            struct row *r = &rows[i];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "method", r->name);
            cli_json_num(e, "samples", r->samples);
            cli_json_num(e, "temperature", r->temperature);
            cli_json_num(e, "accuracy", r->rep.clean.accuracy);
            cli_json_num(e, "nll", r->rep.clean.nll);
            cli_json_num(e, "ece", r->rep.clean.ece);
            cli_json_num(e, "brier", r->rep.clean.brier);
            cli_json_num(e, "ood_auroc_entropy", ood ? r->rep.ood[SK_SCORE_ENTROPY].auroc : NAN);
            cli_json_num(e, "ood_auroc_mi", ood ? r->rep.ood[SK_SCORE_MI].auroc : NAN);
            cli_json_num(e, "ood_auroc_maxprob", ood ? r->rep.ood[SK_SCORE_MAXPROB].auroc : NAN);
            cli_json_num(e, "fgsm_accuracy", r->fgsm_acc);
            cli_json_num(e, "pgd_accuracy", r->pgd_acc);
            cli_json_num(e, "adv_auroc_mi", r->adv_mi.auroc);
            cli_json_num(e, "adv_auroc_entropy", r->adv_ent.auroc);
            cli_json_num(e, "adv_detection_n", r->adv_n);
            cli_json_num(e, "train_seconds", r->train_s);
            cJSON_AddItemToArray(arr, e);
        }
        cli_json_print(j);
    } else {
        printf("data %s (test %d rows), OOD %s, arch %s; attacks Linf eps %g on %d rows, EOT over each method's samples\n\n",
               c.data, te->n, o.ood, o.arch, o.eps, o.n_adv < te->n ? o.n_adv : te->n);
        printf("| method | S | accuracy | NLL | ECE | Brier | OOD AUROC (entropy) | OOD AUROC (MI) | FGSM acc | PGD acc | adv AUROC (MI) |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
        for (int i = 0; i < n_rows; i++) {
            struct row *r = &rows[i];
            printf("| %s | %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", r->name, r->samples,
                   r->rep.clean.accuracy, r->rep.clean.nll, r->rep.clean.ece, r->rep.clean.brier,
                   ood ? r->rep.ood[SK_SCORE_ENTROPY].auroc : NAN, ood ? r->rep.ood[SK_SCORE_MI].auroc : NAN,
                   r->fgsm_acc, r->pgd_acc, r->adv_mi.auroc);
        }
    }
    status = CLI_OK;
out:
    for (int i = 0; i < n_rows; i++) sk_bayes_report_free(&rows[i].rep);
    sk_free(rows);
    sk_model_free(base_net);
    base_net = NULL;
    sk_dataset_free(all);
    sk_dataset_free(tr);
    sk_dataset_free(va);
    sk_dataset_free(te);
    sk_dataset_free(ood);
    return status;
}
