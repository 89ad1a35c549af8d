/* skeptic train: data in, model file out. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"
#include "skeptic/robust.h"

struct train_ctx {
    struct cli_progress prog;
    FILE *log;
    const char *ckpt;
    const char *ckpt_meta;
    bool json, quiet;
    int n_epochs;
};

static void on_batch(void *ctx, int epoch, int batch, int n_batches, float loss, double sps)
{
    struct train_ctx *c = ctx;
    cli_progress_update(&c->prog, epoch, batch, n_batches, loss, sps);
}

static int on_epoch(void *ctx, const struct sk_epoch_metrics *em)
{
    struct train_ctx *c = ctx;
    cli_progress_clear(&c->prog);
    if (!c->quiet) {
        fprintf(stderr, "epoch %d/%d  loss %.4f  acc %.4f", em->epoch + 1, c->n_epochs, em->train_loss, em->train_acc);
        if (!isnan(em->val_loss))
            fprintf(stderr, "  val_loss %.4f  val_acc %.4f%s", em->val_loss, em->val_acc, em->improved ? " *" : "");
        fprintf(stderr, "  lr %.3g  %.1fs  %.0f samples/s\n", em->lr, em->seconds, em->samples_per_s);
    }
    if (c->log) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", em->epoch + 1);
        cli_json_num(o, "train_loss", em->train_loss);
        cli_json_num(o, "train_acc", em->train_acc);
        cli_json_num(o, "val_loss", em->val_loss);
        cli_json_num(o, "val_acc", em->val_acc);
        cli_json_num(o, "lr", em->lr);
        cli_json_num(o, "seconds", em->seconds);
        cli_json_num(o, "samples_per_s", em->samples_per_s);
        cJSON_AddBoolToObject(o, "improved", em->improved);
        char *t = cJSON_PrintUnformatted(o);
        if (t) {
            fprintf(c->log, "%s\n", t);
            fflush(c->log);
            free(t);
        }
        cJSON_Delete(o);
    }
    return 0;
}

static int on_checkpoint(void *ctx, struct sk_trainer *t)
{
    struct train_ctx *c = ctx;
    if (!c->ckpt) return 0;
    return sk_checkpoint_save(c->ckpt, t, c->ckpt_meta);
}

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

int cmd_train(int argc, char **argv)
{
    /* Bayesian methods (--method vi|mc-dropout|ensemble|sgld|laplace): see train_bayes.c */
    if (cli_train_wants_bayes(argc, argv)) return cli_train_bayes(argc, argv);
    struct cli_common c = cli_common_defaults();
    const char *arch = NULL, *optimizer = "adam", *schedule = "constant", *out = NULL, *init = "he-uniform";
    const char *normalize = "none", *log_path = NULL, *ckpt = NULL;
    int epochs = 10, batch = 128, early_stop = 0, warmup = 0;
    float lr = 0, val_split = 0, weight_decay = 0, dropout = 0, label_smoothing = 0, momentum = 0.9f, clip = 0;
    float min_lr = 0;
    long ckpt_every = 0;
    uint64_t seed = 1;
    bool resume = false, quiet = false;
    const char *adv_s = "none"; /* adversarial training (robust.h) */
    float adv_eps = NAN, adv_step = 0, adv_beta = 6, adv_kappa = 0.5f, adv_noise = 2, adv_lambda = NAN, clip_min = NAN, clip_max = NAN;
    int adv_steps = 10, adv_eot = 1;
    struct cli_opt opts[] = {
        CLI_DATA_OPTS(c),
        { "arch", CLI_STR, &arch, "SPEC", "architecture, e.g. mlp:784-512-512-10:relu (see the spec grammar in model.h)" },
        { "epochs", CLI_INT, &epochs, "N", "epochs (default 10)" },
        { "optimizer", CLI_STR, &optimizer, "O", "sgd | momentum | nesterov | adam | adamw | rmsprop (default adam)" },
        { "lr", CLI_FLOAT, &lr, "X", "learning rate (default 0.01 for the sgd family, 1e-3 otherwise)" },
        { "momentum", CLI_FLOAT, &momentum, "X", "momentum for momentum/nesterov (default 0.9)" },
        { "schedule", CLI_STR, &schedule, "S", "constant | step | cosine | onecycle (default constant)" },
        { "warmup", CLI_INT, &warmup, "STEPS", "linear warm-up steps" },
        { "min-lr", CLI_FLOAT, &min_lr, "X", "final learning rate of cosine/onecycle (default 0)" },
        { "batch", CLI_INT, &batch, "B", "batch size (default 128)" },
        { "seed", CLI_U64, &seed, "S", "seed of initialisation, data order, dropout, validation split (default 1)" },
        { "out", CLI_STR, &out, "FILE", "model file to write (.safetensors); written atomically at the end" },
        { "val-split", CLI_FLOAT, &val_split, "F", "fraction of the training rows held out for validation" },
        { "early-stop", CLI_INT, &early_stop, "P", "stop after P epochs without validation improvement (needs --val-split)" },
        { "weight-decay", CLI_FLOAT, &weight_decay, "X", "L2 penalty (decoupled for adamw)" },
        { "dropout", CLI_FLOAT, &dropout, "P", "dropout after hidden activations (mlp) / before the last dense layer" },
        { "label-smoothing", CLI_FLOAT, &label_smoothing, "X", "label smoothing of the cross-entropy" },
        { "clip", CLI_FLOAT, &clip, "X", "clip the gradient's L2 norm to X" },
        { "init", CLI_STR, &init, "I", "he-uniform | he-normal | glorot-uniform | glorot-normal | torch" },
        { "normalize", CLI_STR, &normalize, "K", "none | minmax | standardize (statistics from the training split, saved in the model)" },
        { "checkpoint", CLI_STR, &ckpt, "FILE", "write a checkpoint (weights, optimizer, position) here" },
        { "checkpoint-every", CLI_LONG, &ckpt_every, "N", "checkpoint every N optimizer steps (and every epoch)" },
        { "resume", CLI_FLAG, &resume, NULL, "continue from --checkpoint FILE if it exists" },
        { "log", CLI_STR, &log_path, "FILE.jsonl", "write per-epoch metrics as JSON lines (appended to on --resume)" },
        { "quiet", CLI_FLAG, &quiet, NULL, "no per-epoch lines on stderr" },
        { "adv", CLI_STR, &adv_s, "K", "adversarial training: none | pgd | fgsm (random start; with --val-split, a guard tracks PGD accuracy each epoch and restores the best epoch if the last fell more than 0.05 below it) | trades | ibp | fgsm-mix (CE(x) + CE(x + eps sign grad), Lakshminarayanan et al.) | n-fgsm (noise 2 eps, step eps, no projection; de Jorge et al.) | fgsm-ep (one step of eps from the row's perturbation of the last epoch; Jia et al. 2022) | nuat (clean CE + lambda * nuclear norm of the batch's logit change; one step of eps from Bernoulli noise eps/2; Sriramanan et al. 2021)" },
        { "adv-eps", CLI_FLOAT, &adv_eps, "E", "L-inf radius of the adversarial training, in the data's units (default 0.1; fgsm-mix 0.01)" },
        { "adv-steps", CLI_INT, &adv_steps, "K", "inner PGD steps for pgd/trades (default 10)" },
        { "adv-step-size", CLI_FLOAT, &adv_step, "A", "inner step size (default 2.5 eps/steps; fgsm 1.25 eps; n-fgsm, fgsm-ep, nuat eps)" },
        { "adv-beta", CLI_FLOAT, &adv_beta, "B", "TRADES weight of the KL term (default 6)" },
        { "adv-noise", CLI_FLOAT, &adv_noise, "K", "n-fgsm: radius of the uniform noise in units of eps (default 2)" },
        { "adv-lambda", CLI_FLOAT, &adv_lambda, "L", "fgsm-ep: weight of the regulariser mean (z(x') - z(start))^2 (default 10); nuat: final weight of the nuclear norm, ramped from 0 over 90% of the epochs (default 4.5)" },
        CLI_BOX_OPTS(clip_min, clip_max),
        { "adv-kappa", CLI_FLOAT, &adv_kappa, "K", "IBP: final weight of the clean loss (default 0.5)" },
        { "adv-eot", CLI_INT, &adv_eot, "S", "dropout models: attack in MC mode averaging S masks per step" },
        CLI_THREADS_OPT(c),
        CLI_JSON_OPT(c),
        { 0 },
    };
    static const struct cli_help h = {
        "train",
        "skeptic train --data D --arch SPEC --out MODEL [options]",
        "Train a classifier on the training split of D and save it as safetensors (tensor names as in a PyTorch\n"
        "nn.Sequential). The test split, when D has one, is evaluated at the end. With --checkpoint the run can be\n"
        "killed at any time and continued with --resume, ending bitwise identical to an uninterrupted run.",
        "skeptic train --data fashion-mnist --arch mlp:784-512-512-10:relu --epochs 10 --optimizer adam --lr 1e-3 \\\n"
        "    --batch 128 --seed 1 --out mlp.safetensors\n"
        "skeptic train --data fashion-mnist --classes 6,0 --arch mlp:784-256-2:relu --epochs 5 --out shirt.safetensors\n"
        "skeptic train --data breast_cancer.csv --label-column target --normalize standardize --arch mlp:30-32-2 --out bc.safetensors",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.data) return cli_usage("--data D is required");
    if (!arch) return cli_usage("--arch SPEC is required (e.g. mlp:784-512-512-10:relu)");
    if (!out) return cli_usage("--out FILE is required");
    int ok = sk_optim_kind_parse(optimizer), sk = sk_sched_kind_parse(schedule), ik = parse_init(init);
    int pk = sk_prep_kind_parse(normalize);
    if (ok < 0) return cli_usage("--optimizer '%s' is not sgd, momentum, nesterov, adam, adamw or rmsprop", optimizer);
    if (sk < 0) return cli_usage("--schedule '%s' is not constant, step, cosine or onecycle", schedule);
    if (ik < 0) return cli_usage("--init '%s' is not he-uniform, he-normal, glorot-uniform, glorot-normal or torch", init);
    if (pk < 0) return cli_usage("--normalize '%s' is not none, minmax or standardize", normalize);
    if (epochs < 1) return cli_usage("--epochs must be at least 1");
    if (batch < 1) return cli_usage("--batch must be at least 1");
    if (!(lr >= 0)) return cli_usage("--lr must be positive");
    if (!(val_split >= 0 && val_split < 1)) return cli_usage("--val-split must be in [0,1)");
    if (early_stop < 0) return cli_usage("--early-stop must be >= 0");
    if (early_stop > 0 && val_split <= 0) return cli_usage("--early-stop needs --val-split");
    if (!(dropout >= 0 && dropout < 1)) return cli_usage("--dropout must be in [0,1)");
    if (!(label_smoothing >= 0 && label_smoothing < 1)) return cli_usage("--label-smoothing must be in [0,1)");
    if (resume && !ckpt) return cli_usage("--resume needs --checkpoint FILE");
    if (ckpt_every < 0) return cli_usage("--checkpoint-every must be >= 0");
    if (c.classes) {
        int cl[1024], k;
        if ((rc = cli_parse_classes(c.classes, cl, 1024, &k))) return rc;
    }
    if (c.threads) sk_set_threads(c.threads);

    int status = CLI_FAIL;
    struct sk_dataset *train = NULL, *test = NULL;
    struct sk_model *m = NULL;
    struct sk_trainer *t = NULL;
    struct sk_adv_loss *advl = NULL;
    char *spec = NULL, *meta_json = NULL;
    cJSON *meta = NULL, *res = NULL;
    struct train_ctx tc = { .ckpt = ckpt, .json = c.json, .quiet = quiet, .n_epochs = epochs };

    train = cli_load_data(&c, "train");
    if (!train) {
        status = cli_fail_lib();
        goto out;
    }
    if (train->n < 1) {
        status = cli_fail("%s: the training split is empty", c.data);
        goto out;
    }
    long bad = sk_data_first_nonfinite(train);
    if (bad >= 0) {
        status = cli_fail("%s: row %ld holds a non-finite value", c.data, bad / train->dim);
        goto out;
    }
    /* the test split, if the data has one (a missing one is not an error) */
    if (!c.split) {
        test = cli_load_data(&c, "test");
        sk_error_clear();
    }
    if (!(spec = apply_dropout(arch, dropout))) {
        status = cli_fail_lib();
        goto out;
    }
    if (!(m = sk_model_from_spec(spec))) {
        status = cli_usage("--arch: %s", sk_last_error());
        goto out;
    }
    if (m->in_dim != train->dim) {
        status = cli_fail("--arch '%s' takes %d inputs but %s has %d values per row (%dx%dx%d)", spec, m->in_dim, c.data,
                          train->dim, train->c, train->h, train->w);
        goto out;
    }
    if (train->n_classes > m->n_classes) {
        status = cli_fail("%s has %d classes but --arch '%s' outputs %d scores%s", c.data, train->n_classes, spec,
                          m->n_classes, c.classes ? "" : " (select classes with --classes)");
        goto out;
    }
    /* the preprocessing becomes the model's input transform: the data stay raw */
    if (cli_record_training_data(m, &c, train, (enum sk_prep_kind)pk)) {
        status = cli_fail_lib();
        goto out;
    }
    if (sk_model_init(m, (enum sk_init)ik, seed)) {
        status = cli_fail_lib();
        goto out;
    }

    int adv_kind = sk_adv_kind_parse(adv_s);
    if (isnan(adv_eps)) adv_eps = adv_kind == SK_ADV_FGSM_MIX ? 0.01f : 0.1f; /* as train --method */
    struct sk_adv_config advc = sk_adv_defaults(adv_kind < 0 ? SK_ADV_NONE : (enum sk_adv_kind)adv_kind, adv_eps);
    if (adv_kind < 0) {
        status = cli_usage("--adv '%s' is not none, pgd, fgsm, trades, ibp, fgsm-mix, n-fgsm, fgsm-ep or nuat", adv_s);
        goto out;
    }
    advc.steps = sk_adv_single_step((enum sk_adv_kind)adv_kind) ? 1 : adv_steps;
    advc.step = adv_step;
    advc.trades_beta = adv_beta;
    advc.nfgsm_noise = adv_noise;
    if (!isnan(adv_lambda)) {
        advc.ep_lambda = adv_lambda;
        advc.nuat_lambda = adv_lambda;
    }
    advc.ibp_kappa_end = adv_kappa;
    advc.eot = adv_eot;
    if (adv_kind != SK_ADV_NONE && sk_adv_check(&advc)) {
        status = cli_usage("%s", sk_last_error());
        goto out;
    }
    if (adv_kind != SK_ADV_NONE) {
        int brc = cli_input_box("train", c.data, train, clip_min, clip_max, false, &advc.clip_lo, &advc.clip_hi);
        if (brc) {
            status = brc;
            goto out;
        }
    } else if (!isnan(clip_min) || !isnan(clip_max)) {
        status = cli_usage("--clip-min/--clip-max bound adversarial training: they need --adv");
        goto out;
    }
    struct sk_train_config cfg = sk_train_defaults();
    cfg.epochs = epochs;
    cfg.batch = batch;
    cfg.val_split = val_split;
    cfg.patience = early_stop;
    cfg.seed = seed;
    cfg.label_smoothing = label_smoothing;
    cfg.opt = sk_optim_defaults((enum sk_optim_kind)ok);
    if (lr > 0) cfg.opt.lr = lr;
    cfg.opt.momentum = momentum;
    cfg.opt.weight_decay = weight_decay;
    cfg.opt.clip_norm = clip;
    cfg.opt.sched = (enum sk_sched_kind)sk;
    cfg.opt.warmup_steps = warmup;
    cfg.opt.min_lr = min_lr;
    if (sk == SK_SCHED_STEP) {
        /* step: x0.1 at 50% and 75% of the run is the usual recipe; here every third of it */
        long per_epoch = (long)((train->n - (int)(val_split * train->n) + batch - 1) / batch);
        cfg.opt.step_size = per_epoch * (epochs >= 3 ? epochs / 3 : 1);
    }
    cfg.on_epoch = on_epoch;
    cfg.on_batch = on_batch;
    cfg.on_checkpoint = ckpt ? on_checkpoint : NULL;
    cfg.checkpoint_every = ckpt_every;
    cfg.ctx = &tc;

    /* metadata recorded in the model file (and in checkpoints) */
    meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "skeptic.version", SKEPTIC_VERSION);
    cJSON_AddStringToObject(meta, "skeptic.data", c.data);
    /* classes, split and preprocessing: the model's record, written with it */
    char num[64];
    snprintf(num, sizeof num, "%llu", (unsigned long long)seed);
    cJSON_AddStringToObject(meta, "skeptic.seed", num);
    cJSON *tcfg = cJSON_CreateObject();
    cJSON_AddStringToObject(tcfg, "optimizer", optimizer);
    cJSON_AddNumberToObject(tcfg, "lr", cfg.opt.lr);
    cJSON_AddStringToObject(tcfg, "schedule", schedule);
    cJSON_AddNumberToObject(tcfg, "epochs", epochs);
    cJSON_AddNumberToObject(tcfg, "batch", batch);
    cJSON_AddNumberToObject(tcfg, "weight_decay", weight_decay);
    cJSON_AddNumberToObject(tcfg, "val_split", val_split);
    cJSON_AddNumberToObject(tcfg, "early_stop", early_stop);
    cJSON_AddNumberToObject(tcfg, "label_smoothing", label_smoothing);
    cJSON_AddNumberToObject(tcfg, "dropout", dropout);
    cJSON_AddStringToObject(tcfg, "init", init);
    cJSON_AddStringToObject(tcfg, "normalize", normalize);
    cJSON_AddNumberToObject(tcfg, "train_rows", train->n);
    char *tcfg_txt = cJSON_PrintUnformatted(tcfg);
    cJSON_Delete(tcfg);
    cJSON_AddStringToObject(meta, "skeptic.train", tcfg_txt ? tcfg_txt : "{}");
    free(tcfg_txt);
    if (adv_kind != SK_ADV_NONE) {
        cJSON_AddStringToObject(meta, "skeptic.adv", adv_s);
        snprintf(num, sizeof num, "%g", adv_eps);
        cJSON_AddStringToObject(meta, "skeptic.adv_eps", num);
        if (!(advl = sk_adv_loss_new(m, &advc, batch))) {
            status = cli_fail_lib();
            goto out;
        }
        sk_adv_attach(&cfg, advl); /* before the trainer copies cfg */
    }
    char *ck_txt = cJSON_PrintUnformatted(meta);
    tc.ckpt_meta = ck_txt;

    if (!(t = sk_trainer_new(m, &cfg, train->x, train->y, train->n))) {
        free(ck_txt);
        status = cli_fail_lib();
        goto out;
    }
    struct stat sb;
    if (resume && stat(ckpt, &sb) == 0) {
        if (sk_checkpoint_load(ckpt, t, NULL)) {
            free(ck_txt);
            status = cli_fail_lib();
            goto out;
        }
        fprintf(stderr, "resuming from %s: epoch %d, batch %d, step %ld\n", ckpt, t->st.epoch + 1, t->st.batch,
                t->st.step);
    }
    if (log_path && !(tc.log = fopen(log_path, resume ? "a" : "w"))) {
        free(ck_txt);
        status = cli_fail("%s: cannot open the log for writing", log_path);
        goto out;
    }
    cli_progress_init(&tc.prog, epochs);
    double t0 = sk_now();
    rc = sk_trainer_run(t);
    cli_progress_clear(&tc.prog);
    double secs = sk_now() - t0;
    free(ck_txt);
    struct sk_adv_report adv_rep;
    if (!rc && advl && !(rc = sk_adv_finish(advl, &adv_rep)) && adv_rep.best_epoch >= 0 && !quiet)
        fprintf(stderr, "guard: kept the weights of epoch %d (PGD accuracy %.4f on %d held-out rows; best %.4f at epoch %d)\n",
                adv_rep.kept_epoch + 1, adv_rep.guard_acc[adv_rep.kept_epoch < 64 ? adv_rep.kept_epoch : 63],
                t->n_val < 512 ? t->n_val : 512, adv_rep.best_guard_acc, adv_rep.best_epoch + 1);
    if (rc) {
        status = cli_fail("%s", sk_last_error());
        goto out;
    }
    double test_acc = NAN, test_loss = NAN;
    if (test && test->n > 0) {
        if (test->dim != m->in_dim) {
            status = cli_fail("%s: test split rows do not fit the model", c.data);
            goto out;
        }
        if (sk_model_evaluate(m, test->x, test->y, test->n, &test_acc, &test_loss)) {
            status = cli_fail_lib();
            goto out;
        }
    }
    cJSON *metrics = cJSON_CreateObject();
    cli_json_num(metrics, "train_loss", t->last.train_loss);
    cli_json_num(metrics, "train_acc", t->last.train_acc);
    cli_json_num(metrics, "val_loss", t->st.best_epoch >= 0 ? t->st.best_val : NAN);
    cli_json_num(metrics, "test_accuracy", test_acc);
    cli_json_num(metrics, "test_loss", test_loss);
    cJSON_AddNumberToObject(metrics, "epochs_run", t->st.epoch);
    char *mt = cJSON_PrintUnformatted(metrics);
    cJSON_AddStringToObject(meta, "skeptic.metrics", mt ? mt : "{}");
    free(mt);
    meta_json = cJSON_PrintUnformatted(meta);
    if (!meta_json || sk_model_save(m, out, meta_json)) {
        cJSON_Delete(metrics);
        status = cli_fail_lib();
        goto out;
    }
    res = metrics;
    cJSON_AddStringToObject(res, "model", out);
    cJSON_AddStringToObject(res, "arch", spec);
    cJSON_AddNumberToObject(res, "params", (double)m->n_params);
    cJSON_AddNumberToObject(res, "train_rows", t->n_train);
    cJSON_AddNumberToObject(res, "val_rows", t->n_val);
    cJSON_AddNumberToObject(res, "test_rows", test ? test->n : 0);
    cJSON_AddNumberToObject(res, "seconds", secs);
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)sk_model_weights_hash(m));
    cJSON_AddStringToObject(res, "weights_fnv1a64", hash);
    if (c.json) {
        cli_json_print(res);
    } else {
        printf("model      %s (%s, %zu parameters)\n", out, spec, m->n_params);
        printf("trained    %d epochs on %d rows in %.1f s\n", t->st.epoch, t->n_train, secs);
        if (!isnan(test_acc)) printf("test       accuracy %.4f  loss %.4f  (%d rows)\n", test_acc, test_loss, test->n);
        cJSON_Delete(res);
    }
    res = NULL;
    status = CLI_OK;
out:
    if (tc.log) fclose(tc.log);
    cJSON_Delete(meta);
    free(meta_json);
    sk_free(spec);
    sk_trainer_free(t);
    sk_adv_loss_free(advl);
    sk_model_free(m);
    sk_dataset_free(train);
    sk_dataset_free(test);
    return status;
}
