/* skeptic train: data in, model file out. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "cli/eval_uncertainty.h"
#include "cli/train_report.h"
#include "cli/train_track.h"
#include "skeptic/robust.h"

/* --dropout P: mlp specs get ":dropoutP"; layer specs get "-dropoutP" after
 * the activation that precedes the last dense layer. */
static char *apply_dropout(const char *spec, float p)
{
    size_t n = strlen(spec) + 32;
    char *s = sk_malloc(n);
    if (!s) return NULL;
    if (p <= 0) {
        snprintf(s, n, "%s", spec);
        return s;
    }
    if (!strncmp(spec, "mlp:", 4)) {
        if (strstr(spec, ":dropout")) {
            sk_free(s);
            sk_error(SK_EINVAL, "--dropout given but the spec '%s' already has one", spec);
            return NULL;
        }
        /* an mlp spec without an activation gets relu (the default) first */
        int colons = 0;
        for (const char *q = spec; *q; q++) colons += *q == ':';
        snprintf(s, n, "%s%s:dropout%g", spec, colons >= 2 ? "" : ":relu", p);
        return s;
    }
    const char *last = strstr(spec, "-dense");
    for (const char *q = last; q; q = strstr(q + 1, "-dense")) last = q;
    if (!last) {
        sk_free(s);
        sk_error(SK_EINVAL, "--dropout: spec '%s' has no dense layer to put dropout before", spec);
        return NULL;
    }
    snprintf(s, n, "%.*s-dropout%g%s", (int)(last - spec), spec, p, last);
    return s;
}

static int parse_init(const char *s)
{
    for (int i = 0; i <= SK_INIT_TORCH; i++)
        if (!strcmp(s, sk_init_name((enum sk_init)i))) return i;
    return -1;
}

/* The options of a deterministic training run. */
struct train_args {
    const char *arch, *optimizer, *schedule, *out, *init, *normalize, *log_path, *ckpt, *adv_s;
    int epochs, batch, early_stop, warmup, adv_steps, adv_eot;
    float lr, val_split, weight_decay, dropout, label_smoothing, momentum, clip, min_lr;
    float adv_eps, adv_step, adv_beta, adv_kappa, adv_noise, adv_lambda, clip_min, clip_max;
    long ckpt_every;
    uint64_t seed;
    bool resume;
    /* flatness and dynamics: --batch full, --micro-batch, SAM/ASAM, gradient noise, --track */
    const char *batch_s, *track;
    float sam_rho, asam_eta, grad_noise;
    bool asam;
    int micro_batch, track_n;
    long track_every;
    int opt_kind, sched_kind, init_kind, prep_kind, adv_kind; /* parsed from the strings */
};

/* The flags that set the adversarial-training fields the library names. */
static const struct cli_field_flag adv_flags[] = {
    { "adv.eps", "--adv-eps" },           { "adv.steps", "--adv-steps" },        { "adv.step", "--adv-step-size" },
    { "adv.nfgsm_noise", "--adv-noise" }, { "adv.ep_lambda", "--adv-lambda" },   { "adv.nuat_lambda", "--adv-lambda" },
    { "adv.trades_beta", "--adv-beta" },  { "adv.ibp_kappa_end", "--adv-kappa" }, { "adv.eot", "--adv-eot" },
    { "adv.kind", "--adv" },              { NULL, NULL },
};

/* Everything a run holds; train_run_free releases it. */
struct train_run {
    struct sk_dataset *train, *test;
    struct sk_model *m;
    struct sk_trainer *t;
    struct sk_robust_loss *advl;
    struct sk_robust_config advc;
    float *box_lo, *box_hi; /* advc's per-feature box (tabular data) */
    char *spec;
    cJSON *meta;
    struct cli_train_report tc;
    struct cli_track track;
    double secs;
};

static void train_run_free(struct train_run *r)
{
    cli_track_free(&r->track);
    if (r->tc.log) fclose(r->tc.log);
    cJSON_Delete(r->meta);
    sk_free(r->spec);
    sk_free(r->box_lo);
    sk_free(r->box_hi);
    sk_trainer_free(r->t);
    sk_robust_loss_free(r->advl);
    sk_model_free(r->m);
    sk_dataset_free(r->train);
    sk_dataset_free(r->test);
}

static int check_args(const struct cli_common *c, struct train_args *a)
{
    if (!c->data) return cli_usage("--data D is required");
    if (!a->arch) return cli_usage("--arch SPEC is required (e.g. mlp:784-512-512-10:relu)");
    if (!a->out) return cli_usage("--out FILE is required");
    a->opt_kind = sk_optim_kind_parse(a->optimizer);
    a->sched_kind = sk_sched_kind_parse(a->schedule);
    a->init_kind = parse_init(a->init);
    a->prep_kind = sk_prep_kind_parse(a->normalize);
    if (a->opt_kind < 0)
        return cli_usage("--optimizer '%s' is not sgd, momentum, nesterov, adam, adamw or rmsprop", a->optimizer);
    if (a->sched_kind < 0) return cli_usage("--schedule '%s' is not constant, step, cosine or onecycle", a->schedule);
    if (a->init_kind < 0)
        return cli_usage("--init '%s' is not he-uniform, he-normal, glorot-uniform, glorot-normal or torch", a->init);
    if (a->prep_kind < 0) return cli_usage("--normalize '%s' is not none, minmax or standardize", a->normalize);
    if (a->epochs < 1) return cli_usage("--epochs must be at least 1");
    if (a->batch_s && strcmp(a->batch_s, "full")) {
        char *end;
        long b = strtol(a->batch_s, &end, 10);
        if (end == a->batch_s || *end) return cli_usage("--batch '%s' is not a batch size or 'full'", a->batch_s);
        if (b < 1 || b > 1 << 20) return cli_usage("--batch must be in [1, %d] or 'full'; got %s", 1 << 20, a->batch_s);
        a->batch = (int)b;
    }
    if (a->batch < 1) return cli_usage("--batch must be at least 1");
    if (!(a->sam_rho >= 0) || !(a->asam_eta >= 0) || !(a->grad_noise >= 0) || a->micro_batch < 0)
        return cli_usage("--sam-rho, --asam-eta, --grad-noise and --micro-batch must be >= 0");
    if (a->asam && !(a->sam_rho > 0)) return cli_usage("--asam needs --sam-rho R > 0");
    if (a->track && strcmp(a->track, "curvature")) return cli_usage("--track '%s' is not curvature", a->track);
    if (a->track && !a->log_path) return cli_usage("--track writes into the log: give --log FILE.jsonl");
    if (a->track && (a->track_every < 1 || a->track_n < 2))
        return cli_usage("--track-every must be >= 1 and --track-n >= 2");
    if (!(a->lr >= 0)) return cli_usage("--lr must be positive");
    if (!(a->val_split >= 0 && a->val_split < 1)) return cli_usage("--val-split must be in [0,1)");
    if (a->early_stop < 0) return cli_usage("--early-stop must be >= 0");
    if (a->early_stop > 0 && a->val_split <= 0) return cli_usage("--early-stop needs --val-split");
    if (!(a->dropout >= 0 && a->dropout < 1)) return cli_usage("--dropout must be in [0,1)");
    if (!(a->label_smoothing >= 0 && a->label_smoothing < 1)) return cli_usage("--label-smoothing must be in [0,1)");
    if (a->resume && !a->ckpt) return cli_usage("--resume needs --checkpoint FILE");
    if (a->ckpt_every < 0) return cli_usage("--checkpoint-every must be >= 0");
    if (c->classes) {
        int cl[1024], k;
        int rc = cli_parse_classes(c->classes, cl, 1024, &k);
        if (rc) return rc;
    }
    /* every output can be written and none is an input: checked before training, not after.
     * The checkpoint is read back on --resume by design, so it is an output only. */
    const struct cli_path outs[] = { { "--out", a->out, false }, { "--checkpoint", a->ckpt, false },
                                     { "--log", a->log_path, false }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--data", c->data, false }, { "--labels", c->labels, false },
                                    { NULL, NULL, false } };
    return cli_dist_check_outputs(outs, ins);
}

/* The training split (and the test split, when the data have one). */
static int open_data(const struct cli_common *c, struct train_run *r)
{
    if (!(r->train = cli_load_data(c, "train"))) return cli_fail_lib();
    if (r->train->n < 1) return cli_fail("%s: the training split is empty", c->data);
    long bad = sk_data_first_nonfinite(r->train);
    if (bad >= 0) return cli_fail("%s: row %ld holds a non-finite value", c->data, bad / r->train->dim);
    /* a missing test split is not an error, running out of memory is */
    if (!c->split) {
        r->test = cli_load_data(c, "test");
        if (!r->test && strstr(sk_last_error(), "out of memory")) return cli_fail_lib();
        sk_error_clear();
    }
    return CLI_OK;
}

/* The model of --arch (with --dropout), fitting the data, recording them, initialised. */
static int build_model(const struct cli_common *c, const struct train_args *a, struct train_run *r)
{
    const struct sk_dataset *tr = r->train;
    if (!(r->spec = apply_dropout(a->arch, a->dropout))) return cli_fail_lib();
    if (!(r->m = sk_model_from_spec(r->spec))) return cli_usage("--arch: %s", sk_last_error());
    if (r->m->in_dim != tr->dim)
        return cli_fail("--arch '%s' takes %d inputs but %s has %d values per row (%dx%dx%d)", r->spec, r->m->in_dim,
                        c->data, tr->dim, tr->c, tr->h, tr->w);
    if (tr->n_classes > r->m->n_classes)
        return cli_fail("%s has %d classes but --arch '%s' outputs %d scores%s", c->data, tr->n_classes, r->spec,
                        r->m->n_classes, c->classes ? "" : " (select classes with --classes)");
    /* the preprocessing becomes the model's input transform: the data stay raw */
    if (cli_record_training_data(r->m, c, tr, (enum sk_prep_kind)a->prep_kind)) return cli_fail_lib();
    if (sk_model_init(r->m, (enum sk_init)a->init_kind, a->seed)) return cli_fail_lib();
    return CLI_OK;
}

/* The adversarial-training config of --adv (checked by sk_robust_check) and its box. */
static int build_adv(const struct cli_common *c, struct train_args *a, struct train_run *r)
{
    a->adv_kind = sk_robust_kind_parse(a->adv_s);
    if (isnan(a->adv_eps)) a->adv_eps = a->adv_kind == SK_ROBUST_FGSM_MIX ? 0.01f : 0.1f; /* as train --method */
    if (a->adv_kind < 0)
        return cli_usage("--adv '%s' is not none, pgd, fgsm, trades, ibp, fgsm-mix, n-fgsm, fgsm-ep, nuat or crown-ibp", a->adv_s);
    struct sk_robust_config *advc = &r->advc;
    *advc = sk_robust_defaults((enum sk_robust_kind)a->adv_kind, a->adv_eps);
    advc->steps = sk_robust_single_step((enum sk_robust_kind)a->adv_kind) ? 1 : a->adv_steps;
    advc->step = a->adv_step;
    advc->trades_beta = a->adv_beta;
    advc->nfgsm_noise = a->adv_noise;
    if (!isnan(a->adv_lambda)) {
        advc->ep_lambda = a->adv_lambda;
        advc->nuat_lambda = a->adv_lambda;
    }
    advc->ibp_kappa_end = a->adv_kappa;
    advc->eot = a->adv_eot;
    if (a->adv_kind == SK_ROBUST_NONE) {
        if (!isnan(a->clip_min) || !isnan(a->clip_max))
            return cli_usage("--clip-min/--clip-max bound adversarial training: they need --adv");
        return CLI_OK;
    }
    if (sk_robust_check(advc)) return cli_usage_lib(adv_flags);
    int rc = cli_feature_box("train", c->data, r->train, NULL, a->clip_min, a->clip_max, false, &advc->clip_lo,
                             &advc->clip_hi, &r->box_lo, &r->box_hi);
    advc->box_lo = r->box_lo;
    advc->box_hi = r->box_hi;
    return rc;
}

static struct sk_train_config build_config(const struct train_args *a, struct train_run *r)
{
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = a->epochs;
    cfg.batch = a->batch;
    cfg.val_split = a->val_split;
    cfg.patience = a->early_stop;
    cfg.seed = a->seed;
    cfg.label_smoothing = a->label_smoothing;
    cfg.opt = sk_optim_defaults((enum sk_optim_kind)a->opt_kind);
    if (a->lr > 0) cfg.opt.lr = a->lr;
    cfg.opt.momentum = a->momentum;
    cfg.opt.weight_decay = a->weight_decay;
    cfg.opt.clip_norm = a->clip;
    cfg.opt.sched = (enum sk_sched_kind)a->sched_kind;
    cfg.opt.warmup_steps = a->warmup;
    cfg.opt.min_lr = a->min_lr;
    if (a->sched_kind == SK_SCHED_STEP) {
        /* step: x0.1 at 50% and 75% of the run is the usual recipe; here every third of it */
        long per_epoch = (long)((r->train->n - (int)(a->val_split * r->train->n) + a->batch - 1) / a->batch);
        cfg.opt.step_size = per_epoch * (a->epochs >= 3 ? a->epochs / 3 : 1);
    }
    cfg.on_epoch = cli_train_on_epoch;
    cfg.on_batch = cli_train_on_batch;
    cfg.on_checkpoint = a->ckpt && sk_dist_rank() == 0 ? cli_train_on_checkpoint : NULL; /* files: rank 0's */
    cfg.data_parallel = cli_dist_on() && a->adv_kind == SK_ROBUST_NONE && !a->track; /* else rank 0 alone */
    cfg.stop = &cli_interrupted;
    cfg.checkpoint_every = a->ckpt_every;
    cfg.ctx = &r->tc;
    cfg.micro_batch = a->micro_batch;
    cfg.opt.sam_rho = a->sam_rho;
    cfg.opt.sam_adaptive = a->asam;
    cfg.opt.sam_eta = a->asam_eta;
    cfg.opt.grad_noise = a->grad_noise;
    if (a->track) {
        cfg.on_step = cli_track_on_step;
        cfg.step_ctx = &r->track;
    }
    return cfg;
}

/* The metadata recorded in the model file and in checkpoints (classes, split
 * and preprocessing are the model's record, written with it). */
static cJSON *build_meta(const struct cli_common *c, const struct train_args *a, const struct sk_train_config *cfg,
                         const struct train_run *r)
{
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "skeptic.version", SKEPTIC_VERSION);
    cJSON_AddStringToObject(meta, "skeptic.data", c->data);
    char num[64];
    snprintf(num, sizeof num, "%llu", (unsigned long long)a->seed);
    cJSON_AddStringToObject(meta, "skeptic.seed", num);
    cJSON *tcfg = cJSON_CreateObject();
    cJSON_AddStringToObject(tcfg, "optimizer", a->optimizer);
    cJSON_AddNumberToObject(tcfg, "lr", cfg->opt.lr);
    cJSON_AddStringToObject(tcfg, "schedule", a->schedule);
    cJSON_AddNumberToObject(tcfg, "epochs", a->epochs);
    cJSON_AddNumberToObject(tcfg, "batch", a->batch);
    if (a->sam_rho > 0) cJSON_AddNumberToObject(tcfg, a->asam ? "asam_rho" : "sam_rho", a->sam_rho);
    if (a->asam) cJSON_AddNumberToObject(tcfg, "asam_eta", a->asam_eta);
    if (a->grad_noise > 0) cJSON_AddNumberToObject(tcfg, "grad_noise", a->grad_noise);
    cJSON_AddNumberToObject(tcfg, "weight_decay", a->weight_decay);
    cJSON_AddNumberToObject(tcfg, "val_split", a->val_split);
    cJSON_AddNumberToObject(tcfg, "early_stop", a->early_stop);
    cJSON_AddNumberToObject(tcfg, "label_smoothing", a->label_smoothing);
    cJSON_AddNumberToObject(tcfg, "dropout", a->dropout);
    cJSON_AddStringToObject(tcfg, "init", a->init);
    cJSON_AddStringToObject(tcfg, "normalize", a->normalize);
    cJSON_AddNumberToObject(tcfg, "train_rows", r->train->n);
    char *tcfg_txt = cJSON_PrintUnformatted(tcfg);
    cJSON_Delete(tcfg);
    cJSON_AddStringToObject(meta, "skeptic.train", tcfg_txt ? tcfg_txt : "{}");
    free(tcfg_txt);
    if (a->adv_kind != SK_ROBUST_NONE) {
        cJSON_AddStringToObject(meta, "skeptic.adv", a->adv_s);
        snprintf(num, sizeof num, "%g", a->adv_eps);
        cJSON_AddStringToObject(meta, "skeptic.adv_eps", num);
    }
    return meta;
}

/* The trainer (resumed from --checkpoint on --resume) and the --log file;
 * ck_txt is the checkpoints' metadata, alive until the run ends. */
static int start_trainer(const struct train_args *a, struct sk_train_config *cfg, struct train_run *r)
{
    if (a->adv_kind != SK_ROBUST_NONE) {
        if (!(r->advl = sk_robust_loss_new(r->m, &r->advc, a->batch))) return cli_fail_lib();
        sk_robust_attach(cfg, r->advl); /* before the trainer copies cfg */
    }
    if (!(r->t = sk_trainer_new(r->m, cfg, r->train->x, r->train->y, r->train->n))) return cli_fail_lib();
    struct stat sb;
    if (a->resume && stat(a->ckpt, &sb) == 0) {
        if (sk_checkpoint_load(a->ckpt, r->t, NULL)) return cli_fail_lib();
        fprintf(stderr, "resuming from %s: epoch %d, batch %d, step %ld\n", a->ckpt, r->t->st.epoch + 1,
                r->t->st.batch, r->t->st.step);
    }
    if (a->log_path && sk_dist_rank() == 0 && !(r->tc.log = fopen(a->log_path, a->resume ? "a" : "w")))
        return cli_fail("%s: cannot open the log for writing", a->log_path);
    if (a->track) {
        struct sk_curvature_track_config kc = sk_curvature_track_defaults();
        kc.n = a->track_n;
        kc.gns_batch = kc.n >= 256 ? 128 : kc.n / 2; /* B_simple does not depend on it, its spread does */
        kc.seed = a->seed;
        const struct sk_dataset *te = r->test;
        return cli_track_start(&r->track, r->m, r->train->x, r->train->y, r->train->n, te ? te->x : NULL,
                               te ? te->y : NULL, te ? te->n : 0, &kc, a->track_every, r->tc.log, r->t);
    }
    return CLI_OK;
}

/* After Ctrl-C: the run stopped at a step boundary. With --checkpoint, a
 * checkpoint of exactly that point (so --resume loses nothing); without,
 * the weights so far in --out. A second Ctrl-C meanwhile ends the process
 * (the atomic write leaves no temporary). */
static int interrupted(const struct train_args *a, struct train_run *r)
{
    const struct sk_train_state *st = &r->t->st;
    char what[1200];
    if (sk_dist_rank() != 0) return CLI_INTERRUPTED;
    if (a->ckpt) {
        if (sk_checkpoint_save(a->ckpt, r->t, r->tc.ckpt_meta)) return cli_fail_lib();
        snprintf(what, sizeof what, "checkpoint %s is at step %ld: rerun the same command with --resume to continue",
                 a->ckpt, st->step);
    } else {
        char where[96];
        snprintf(where, sizeof where, "epoch %d, batch %d, step %ld", st->epoch + 1, st->batch, st->step);
        cJSON_AddStringToObject(r->meta, "skeptic.interrupted", where);
        char *meta_json = cJSON_PrintUnformatted(r->meta);
        int rc = !meta_json || sk_model_save(r->m, a->out, meta_json);
        free(meta_json);
        if (rc) return cli_fail_lib();
        snprintf(what, sizeof what, "wrote the weights so far to %s (not evaluated); with --checkpoint FILE a run "
                 "can be resumed", a->out);
    }
    cli_train_interrupted(&r->tc, st->epoch, st->batch, st->step, what);
    return CLI_INTERRUPTED;
}

static int run_trainer(const struct train_args *a, struct train_run *r)
{
    double t0 = sk_now();
    cli_interrupt_arm();
    int rc = sk_trainer_run(r->t);
    cli_progress_clear(&r->tc.prog);
    r->secs = sk_now() - t0;
    if (!rc && cli_interrupted && !r->t->st.done && r->t->st.epoch < a->epochs) {
        rc = interrupted(a, r);
        cli_interrupt_disarm();
        return rc;
    }
    cli_interrupt_disarm();
    struct sk_robust_report rep;
    const struct sk_trainer *t = r->t;
    if (!rc && r->advl && !(rc = sk_robust_finish(r->advl, &rep)) && rep.best_epoch >= 0 && cli_verbosity >= 0)
        fprintf(stderr, "guard: kept the weights of epoch %d (PGD accuracy %.4f on %d held-out rows; best %.4f at epoch %d)\n",
                rep.kept_epoch + 1, rep.guard_acc[rep.kept_epoch < 64 ? rep.kept_epoch : 63],
                t->n_val < 512 ? t->n_val : 512, rep.best_guard_acc, rep.best_epoch + 1);
    if (!rc) return CLI_OK;
    /* the library keeps the last good weights in memory; the file is not written */
    rc = cli_fail_lib();
    fprintf(stderr, "skeptic train: nothing was written to %s\n", a->out);
    return rc;
}

/* Evaluate on the test split, save the model with its metrics, print. */
static int finish(const struct cli_common *c, const struct train_args *a, struct train_run *r)
{
    const struct sk_trainer *t = r->t;
    const struct sk_dataset *test = r->test;
    double test_acc = NAN, test_loss = NAN;
    if (sk_dist_rank() != 0) return CLI_OK; /* the same weights as rank 0's, which writes them */
    if (test && test->n > 0) {
        if (test->dim != r->m->in_dim) return cli_fail("%s: test split rows do not fit the model", c->data);
        if (sk_model_evaluate(r->m, test->x, test->y, test->n, &test_acc, &test_loss)) return cli_fail_lib();
    }
    cJSON *res = cJSON_CreateObject();
    cli_json_num(res, "train_loss", t->last.train_loss);
    cli_json_num(res, "train_acc", t->last.train_acc);
    cli_json_num(res, "val_loss", t->st.best_epoch >= 0 ? t->st.best_val : NAN);
    cli_json_num(res, "test_accuracy", test_acc);
    cli_json_num(res, "test_loss", test_loss);
    cJSON_AddNumberToObject(res, "epochs_run", t->st.epoch);
    char *mt = cJSON_PrintUnformatted(res);
    cJSON_AddStringToObject(r->meta, "skeptic.metrics", mt ? mt : "{}");
    free(mt);
    char *meta_json = cJSON_PrintUnformatted(r->meta);
    int rc = !meta_json || sk_model_save(r->m, a->out, meta_json);
    free(meta_json);
    if (rc) {
        cJSON_Delete(res);
        return cli_fail_lib();
    }
    cJSON_Delete(res);
    struct cli_train_summary sm = {
        .out = a->out, .arch = r->spec, .method = "deterministic", .params = r->m->n_params,
        .epochs_run = t->st.epoch, .train_rows = t->n_train, .val_rows = t->n_val, .test_rows = test ? test->n : 0,
        .test_correct = test ? lround(test_acc * test->n) : 0, .train_loss = t->last.train_loss,
        .train_acc = t->last.train_acc, .val_loss = t->st.best_epoch >= 0 ? t->st.best_val : NAN,
        .test_acc = test_acc, .test_loss = test_loss, .seconds = r->secs, .weights_hash = sk_model_weights_hash(r->m),
    };
    if (c->json) cli_json_print(cli_train_summary_json(&sm));
    else cli_train_summary_print(&sm);
    return CLI_OK;
}

static int train(const struct cli_common *c, struct train_args *a)
{
    struct train_run r = { 0 };
    cli_train_report_init(&r.tc, a->epochs, 1);
    r.tc.ckpt = a->ckpt;
    char *ck_txt = NULL;
    int status = open_data(c, &r);
    if (!status && a->batch_s && !strcmp(a->batch_s, "full")) {
        /* one step per epoch over every training row, in chunks of --micro-batch */
        a->batch = r.train->n - (int)(a->val_split * r.train->n);
        if (a->micro_batch == 0) a->micro_batch = 2048;
    }
    if (!status) status = build_model(c, a, &r);
    if (!status) status = build_adv(c, a, &r);
    /* data-parallel covers the plain loss; other runs take one process */
    if (!status && cli_dist_on() && (a->adv_kind != SK_ROBUST_NONE || a->track) &&
        cli_dist_sit_out("training with --adv or --track")) {
        train_run_free(&r);
        return CLI_OK;
    }
    if (!status && cli_dist_on() && a->micro_batch > 0)
        status = cli_usage("--micro-batch: under mpirun every rank's share of the batch is its micro-batch (the "
                           "ranks' chunks are ceil(batch / ranks) rows); drop --micro-batch or run one process");
    if (!status) {
        struct sk_train_config cfg = build_config(a, &r);
        r.meta = build_meta(c, a, &cfg, &r);
        r.tc.ckpt_meta = ck_txt = cJSON_PrintUnformatted(r.meta);
        status = start_trainer(a, &cfg, &r);
    }
    if (!status) status = run_trainer(a, &r);
    free(ck_txt);
    if (!status) status = finish(c, a, &r);
    train_run_free(&r);
    return status;
}

/* The options of Bayesian training (train_bayes.c parses them when --method
 * is given): listed here so that train has one help page, and refused with
 * a pointer to --method when given without it. Their values land in bdummy. */
static struct {
    const char *s;
    int i;
    float f;
    bool b;
} bdummy;
#define BAYES_ROWS                                                                                                    \
    { "method", CLI_STR, &bdummy.s, "M", "deterministic (default) | vi | mc-dropout | ensemble | sgld | laplace" },    \
    { "members", CLI_INT, &bdummy.i, "M", "ensemble: members, each from its own seed (default 5)" },                  \
    { "temperature", CLI_FLAG, &bdummy.b, NULL, "fit a temperature on --val-split's rows afterwards" },              \
    { "prior", CLI_STR, &bdummy.s, "P", "vi prior: gaussian | mixture (default gaussian)" },                          \
    { "prior-sigma", CLI_FLOAT, &bdummy.f, "S", "vi Gaussian prior scale (default 1)" },                              \
    { "init-sigma", CLI_FLOAT, &bdummy.f, "S", "vi initial posterior scale (default 0.02)" },                         \
    { "kl-weight", CLI_FLOAT, &bdummy.f, "B", "vi KL weight (default 1)" },                                           \
    { "kl-anneal", CLI_INT, &bdummy.i, "E", "vi: ramp the KL weight up over E epochs (default 0)" },                  \
    { "no-local-reparam", CLI_FLAG, &bdummy.b, NULL, "vi: sample weights per minibatch instead of the local trick" }, \
    { "flipout", CLI_FLAG, &bdummy.b, NULL, "vi: Flipout where the local trick does not apply (CNNs)" },              \
    { "no-flipout", CLI_FLAG, &bdummy.b, NULL, "vi: one weight draw per minibatch where the local trick does not apply (default)" }, \
    { "sgld-epochs", CLI_INT, &bdummy.i, "E", "sgld: burn-in epochs after the --epochs of Adam (default 1)" },         \
    { "sgld-lr", CLI_FLOAT, &bdummy.f, "LR", "sgld step size on the mean loss (default 0.01)" },                      \
    { "sgld-thin", CLI_INT, &bdummy.i, "K", "sgld: keep every K-th step (default 100)" },                             \
    { "sgld-keep", CLI_INT, &bdummy.i, "N", "sgld: samples kept (default 20)" },                                      \
    { "sgld-cycles", CLI_INT, &bdummy.i, "C", "sgld: cyclical step size with C cycles (default 0: constant)" },        \
    { "sgld-prior", CLI_FLOAT, &bdummy.f, "S", "sgld Gaussian prior scale (default 1)" },                             \
    { "hessian", CLI_STR, &bdummy.s, "H", "laplace: kfac | full (default kfac)" },                                     \
    { "prior-precision", CLI_FLOAT, &bdummy.f, "D", "laplace prior precision (default: marginal likelihood)" },        \
    { "probit", CLI_FLAG, &bdummy.b, NULL, "laplace: probit predictive instead of Monte Carlo" }

int cmd_train(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct train_args a = {
        .optimizer = "adam", .schedule = "constant", .init = "he-uniform", .normalize = "none", .adv_s = "none",
        .epochs = 10, .batch = 128, .momentum = 0.9f, .seed = 1, .asam_eta = 0.01f, .track_every = 10, .track_n = 1000, .adv_eps = NAN, .adv_beta = 6, .adv_kappa = 0.5f,
        .adv_noise = 2, .adv_lambda = NAN, .clip_min = NAN, .clip_max = NAN, .adv_steps = 10, .adv_eot = 1,
    };
    struct cli_opt opts[] = {
        CLI_GROUP_HEAD("data"),
        CLI_DATA_OPTS(c),
        CLI_GROUP_HEAD("model"),
        { "arch", CLI_STR, &a.arch, "SPEC", "architecture, e.g. mlp:784-512-512-10:relu (grammar: skeptic help specs)" },
        { "dropout", CLI_FLOAT, &a.dropout, "P", "dropout after hidden activations (mlp) / before the last dense layer" },
        { "init", CLI_STR, &a.init, "I", "he-uniform | he-normal | glorot-uniform | glorot-normal | torch" },
        { "normalize", CLI_STR, &a.normalize, "K", "none | minmax | standardize (statistics from the training split, saved in the model)" },
        { "seed", CLI_U64, &a.seed, "S", "seed of initialisation, data order, dropout, validation split (default 1)" },
        CLI_GROUP_HEAD("optimisation"),
        { "epochs", CLI_INT, &a.epochs, "N", "epochs (default 10)" },
        { "batch", CLI_STR, &a.batch_s, "B|full", "batch size (default 128); full: gradient descent on all training rows, one step per epoch" },
        { "micro-batch", CLI_INT, &a.micro_batch, "N", "rows per forward/backward inside a batch, gradients accumulated (default: the whole batch; 2048 with --batch full)" },
        { "sam-rho", CLI_FLOAT, &a.sam_rho, "R", "sharpness-aware minimisation (Foret et al.) around --optimizer: the gradient at w + R g/|g|" },
        { "asam", CLI_FLAG, &a.asam, NULL, "adaptive SAM (Kwon et al.): the ascent scaled by |w| + eta (with --sam-rho, typically 0.5-2)" },
        { "asam-eta", CLI_FLOAT, &a.asam_eta, "E", "ASAM's eta (default 0.01)" },
        { "grad-noise", CLI_FLOAT, &a.grad_noise, "S", "add isotropic Gaussian noise of standard deviation S to every gradient" },
        { "track", CLI_STR, &a.track, "curvature", "log lambda_max, Hessian trace, gradient noise scale, gradient and weight norms, train/test loss into --log" },
        { "track-every", CLI_LONG, &a.track_every, "K", "--track: probe every K optimizer steps (default 10)" },
        { "track-n", CLI_INT, &a.track_n, "N", "--track: rows of the fixed training and test subsets probed (default 1000)" },
        { "optimizer", CLI_STR, &a.optimizer, "O", "sgd | momentum | nesterov | adam | adamw | rmsprop (default adam)" },
        { "lr", CLI_FLOAT, &a.lr, "X", "learning rate (default 0.01 for the sgd family, 1e-3 otherwise)" },
        { "momentum", CLI_FLOAT, &a.momentum, "X", "momentum for momentum/nesterov (default 0.9)" },
        { "schedule", CLI_STR, &a.schedule, "S", "constant | step | cosine | onecycle (default constant)" },
        { "warmup", CLI_INT, &a.warmup, "STEPS", "linear warm-up steps" },
        { "min-lr", CLI_FLOAT, &a.min_lr, "X", "final learning rate of cosine/onecycle (default 0)" },
        { "weight-decay", CLI_FLOAT, &a.weight_decay, "X", "L2 penalty (decoupled for adamw)" },
        { "label-smoothing", CLI_FLOAT, &a.label_smoothing, "X", "label smoothing of the cross-entropy" },
        { "clip", CLI_FLOAT, &a.clip, "X", "clip the gradient's L2 norm to X" },
        { "val-split", CLI_FLOAT, &a.val_split, "F", "fraction of the training rows held out for validation" },
        { "early-stop", CLI_INT, &a.early_stop, "P", "stop after P epochs without validation improvement (needs --val-split)" },
        CLI_GROUP_HEAD("adversarial"),
        { "adv", CLI_STR, &a.adv_s, "K", "adversarial training: none | pgd | fgsm | trades | ibp | fgsm-mix | n-fgsm | "
          "fgsm-ep | nuat | crown-ibp. fgsm: random start, and with --val-split a guard that restores the best epoch by PGD "
          "accuracy; fgsm-mix: CE(x) + CE(x + eps sign grad); n-fgsm: noise 2 eps, no projection; fgsm-ep: one step "
          "from the row's last perturbation; nuat: nuclear-norm regulariser (docs/robust-training.md)" },
        { "adv-eps", CLI_FLOAT, &a.adv_eps, "E", "L-inf radius, in the data's units (default 0.1; fgsm-mix 0.01; skeptic help eps)" },
        { "adv-steps", CLI_INT, &a.adv_steps, "K", "inner PGD steps for pgd/trades (default 10)" },
        { "adv-step-size", CLI_FLOAT, &a.adv_step, "A", "inner step size (default 2.5 eps/steps; fgsm 1.25 eps; n-fgsm, fgsm-ep, nuat eps)" },
        { "adv-beta", CLI_FLOAT, &a.adv_beta, "B", "TRADES weight of the KL term (default 6)" },
        { "adv-noise", CLI_FLOAT, &a.adv_noise, "K", "n-fgsm: radius of the uniform noise in units of eps (default 2)" },
        { "adv-lambda", CLI_FLOAT, &a.adv_lambda, "L", "fgsm-ep: weight of the regulariser mean (z(x') - z(start))^2 (default 10); nuat: final weight of the nuclear norm, ramped from 0 over 90% of the epochs (default 4.5)" },
        { "adv-kappa", CLI_FLOAT, &a.adv_kappa, "K", "IBP, CROWN-IBP: final weight of the clean loss (default 0.5)" },
        { "adv-eot", CLI_INT, &a.adv_eot, "S", "dropout models: attack in MC mode averaging S masks per step" },
        CLI_BOX_OPTS(a.clip_min, a.clip_max),
        CLI_GROUP_HEAD("Bayesian (--method; vi, mc-dropout and ensemble also take --adv)"),
        BAYES_ROWS,
        CLI_GROUP_HEAD("output"),
        { "out", CLI_STR, &a.out, "FILE", "model file to write (.safetensors); written atomically at the end" },
        { "checkpoint", CLI_STR, &a.ckpt, "FILE", "write a checkpoint (weights, optimizer, position) here; Ctrl-C writes one too" },
        { "checkpoint-every", CLI_LONG, &a.ckpt_every, "N", "checkpoint every N optimizer steps (and every epoch)" },
        { "resume", CLI_FLAG, &a.resume, NULL, "continue from --checkpoint FILE if it exists" },
        { "log", CLI_STR, &a.log_path, "FILE.jsonl", "write per-epoch metrics as JSON lines (appended to on --resume)" },
        CLI_JSON_OPT(c),
        CLI_THREADS_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "train",
        "skeptic train --data D --arch SPEC --out MODEL [--method M] [options]",
        "Train a classifier on the training split of D and save it as safetensors (tensor names as in a PyTorch\n"
        "nn.Sequential). The test split, when D has one, is evaluated at the end. --method vi, mc-dropout, ensemble,\n"
        "sgld or laplace trains a Bayesian network instead and writes its posterior (evaluate it with skeptic eval\n"
        "--samples S --ood mnist).\n\n"
        "Ctrl-C stops at the next step: with --checkpoint a checkpoint of that step is written (continue with\n"
        "--resume, ending bitwise identical to an uninterrupted run), without one the weights so far go to --out.\n"
        "A second Ctrl-C quits at once. Exit codes: 0, 1 failure, 2 usage error, 130 interrupted.",
        "skeptic train --data fashion-mnist --arch mlp:784-512-512-10:relu --epochs 10 --optimizer adam --lr 1e-3 \\\n"
        "    --batch 128 --seed 1 --out mlp.safetensors\n"
        "skeptic train --data fashion-mnist --classes 6,0 --arch mlp:784-256-2:relu --epochs 5 --out shirt.safetensors\n"
        "skeptic train --data breast_cancer.csv --label-column target --normalize standardize --arch mlp:30-32-2 --out bc.safetensors\n"
        "skeptic train --method vi --data fashion-mnist --arch mlp:784-400-400-10:relu --epochs 20 --out bbb.safetensors\n"
        "skeptic train --method ensemble --members 5 --data fashion-mnist --arch mlp:784-400-400-10:relu --out ens.safetensors",
    };
    /* one help page for every method; Bayesian methods: see train_bayes.c */
    bool help = false;
    for (int i = 1; i < argc; i++) help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    if (!help && cli_train_wants_bayes(argc, argv))
        return cli_dist_sit_out("Bayesian training (--method)") ? CLI_OK : cli_train_bayes(argc, argv);
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    static const struct cli_opt brows[] = { BAYES_ROWS, { 0 } };
    for (int i = 1; i < argc; i++)
        for (const struct cli_opt *o = brows + 1; o->name; o++) {
            size_t l = strlen(o->name);
            if (!strncmp(argv[i], "--", 2) && !strncmp(argv[i] + 2, o->name, l) && (!argv[i][2 + l] || argv[i][2 + l] == '='))
                return cli_usage("--%s is an option of Bayesian training: give --method (%s)", o->name, o->help);
        }
    if ((rc = check_args(&c, &a))) return rc;
    return train(&c, &a);
}
