/* skeptic eval: accuracy, loss, per-class accuracy, confusion matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_dist.h"
#include "cli/eval_uncertainty.h"

/* What eval found: K x K confusion counts (rows: true class). */
struct eval_result {
    int n, K;
    long *conf;
    double acc, loss;
};

/* --predictions (the log-probabilities lp) and --logits (the raw scores). */
static int write_outputs(struct sk_model *m, const struct sk_dataset *d, const float *lp,
                         const char *pred_path, const char *logits_path)
{
    int64_t shp[2] = { d->n, m->n_classes };
    if (pred_path && sk_npy_write_f32(pred_path, lp, 2, shp)) return cli_fail_lib();
    if (logits_path) {
        /* the raw scores, for comparison with other frameworks' logits */
        float *z = sk_malloc(sizeof(float) * (size_t)d->n * m->n_classes);
        int wrc = !z || sk_model_logits(m, d->x, d->n, z) || sk_npy_write_f32(logits_path, z, 2, shp);
        sk_free(z);
        if (wrc) return cli_fail_lib();
    }
    return CLI_OK;
}

static void tally(const struct sk_dataset *d, const float *lp, struct eval_result *r)
{
    int K = r->K;
    double nll = 0;
    long correct = 0;
    for (int i = 0; i < d->n; i++) {
        const float *q = lp + (size_t)i * K;
        int b = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[b]) b = k;
        r->conf[(size_t)d->y[i] * K + b]++;
        correct += b == d->y[i];
        nll -= q[d->y[i]];
    }
    r->n = d->n;
    r->acc = (double)correct / d->n;
    r->loss = nll / d->n;
}

static long class_rows(const struct eval_result *r, int k)
{
    long tot = 0;
    for (int j = 0; j < r->K; j++) tot += r->conf[(size_t)k * r->K + j];
    return tot;
}

static void print_json(const struct cli_common *c, const char *split, const struct eval_result *r)
{
    int K = r->K;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "split", split);
    cJSON_AddNumberToObject(o, "n", r->n);
    cJSON_AddNumberToObject(o, "n_classes", K);
    cli_json_num(o, "accuracy", r->acc);
    cli_json_num(o, "loss", r->loss);
    cJSON *pc = cJSON_AddArrayToObject(o, "per_class_accuracy");
    cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
    for (int k = 0; k < K; k++) {
        long tot = class_rows(r, k);
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < K; j++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->conf[(size_t)k * K + j]));
        cJSON_AddItemToArray(cm, row);
        cJSON_AddItemToArray(pc, tot ? cJSON_CreateNumber((double)r->conf[(size_t)k * K + k] / tot) : cJSON_CreateNull());
    }
    cli_json_print(o);
}

static void print_text(const struct cli_common *c, const struct sk_model *m, const char *split, const struct eval_result *r)
{
    printf("model     %s\nspec      %s\n", c->model, m->spec);
    printf("data      %s, split %s, %d rows\n", c->data, split, r->n);
    printf("accuracy  %.4f\nNLL       %.4f\n", r->acc, r->loss);
    cli_eval_print_classes(r->conf, r->K, c->data, m->data.classes);
}

/* The log-probabilities of every row into lp (rank 0; every rank when
 * alone): under mpirun each rank computes its share of the rows and rank 0
 * gathers them in row order, so the tally is that of one process. */
static int log_probs_sharded(struct sk_model *m, const struct sk_dataset *d, float *lp)
{
    long lo, hi;
    size_t K = (size_t)m->n_classes;
    cli_dist_shard(d->n, CLI_DIST_ROWS, &lo, &hi);
    int rc = hi > lo ? sk_model_log_probs(m, d->x + (size_t)lo * d->dim, (int)(hi - lo), lp + (size_t)lo * K) : SK_OK;
    if (rc || !cli_dist_on()) return rc;
    /* rank 0's share is already in place; the gather moves it onto itself */
    return sk_dist_gather(lp + (size_t)lo * K, sizeof(float) * K * (size_t)(hi - lo), lp, sizeof(float) * K * (size_t)d->n);
}

/* The eval of a deterministic model file. */
static int eval_model(const struct cli_common *c, const char *pred_path, const char *logits_path)
{
    char *meta = NULL;
    struct sk_model *m = cli_load_model(c, &meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *d = cli_load_eval_data(c, m, meta);
    struct eval_result r = { .K = m->n_classes };
    float *lp = NULL;
    int status = CLI_FAIL;
    if (!d) goto out;
    if (d->n < 1) {
        status = cli_fail("%s: no rows to evaluate", c->data);
        goto out;
    }
    lp = sk_malloc(sizeof(float) * (size_t)d->n * r.K);
    r.conf = sk_calloc((size_t)r.K * r.K, sizeof(long));
    if (!lp || !r.conf || log_probs_sharded(m, d, lp)) {
        status = cli_fail_lib();
        goto out;
    }
    if (sk_dist_rank() != 0) { /* rank 0 tallies and writes */
        status = CLI_OK;
        goto out;
    }
    if ((status = write_outputs(m, d, lp, pred_path, logits_path))) goto out;
    tally(d, lp, &r);
    const char *split = c->split ? c->split : "test";
    if (c->json) print_json(c, split, &r);
    else print_text(c, m, split, &r);
    status = CLI_OK;
out:
    sk_free(lp);
    sk_free(r.conf);
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}

int cmd_eval(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    struct cli_unc_opts u = { 0 };
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c), CLI_DATA_OPTS(c), CLI_THREADS_OPT(c), CLI_JSON_OPT(c),
        { "predictions", CLI_STR, &u.predictions, "FILE.npy", "write the log-probabilities (n x classes, float32) as .npy" },
        { "logits", CLI_STR, &u.logits, "FILE.npy", "write the logits (n x classes, float32) as .npy" }, CLI_UNC_OPTS(u), { 0 },
    };
    static const struct cli_help h = {
        "eval",
        "skeptic eval --model MODEL --data D [options]",
        "Evaluate a model on a split of D (default: test): accuracy, mean cross-entropy, per-class accuracy and the\n"
        "confusion matrix (rows: true class, columns: predicted). The class selection and preprocessing recorded in\n"
        "the model file are applied to the data. Files written by PyTorch need --arch.\n"
        "JSON keys: accuracy, loss, n, n_classes, per_class_accuracy, confusion, model, data, split.",
        "skeptic eval --model mlp.safetensors --data fashion-mnist\n"
        "skeptic eval --model torch.safetensors --arch mlp:784-128-10:relu --data fashion-mnist --json",
    };
    int rc = cli_parse(argc, argv, &h, opts, NULL, 0, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!c.model) return cli_usage("--model FILE is required");
    if (!c.data) return cli_usage("--data D is required");
    const struct cli_path outs[] = { { "--predictions", u.predictions, false }, { "--logits", u.logits, false },
                                     { "--plots", u.plots, true }, { NULL, NULL, false } };
    const struct cli_path ins[] = { { "--model", c.model, false }, { "--data", c.data, false },
                                    { "--labels", c.labels, false }, { "--ood", u.ood, false }, { NULL, NULL, false } };
    if ((rc = cli_dist_check_outputs(outs, ins))) return rc;
    /* Bayesian posteriors and uncertainty flags: see eval_uncertainty.c */
    if (u.samples || u.ood || u.plots || cli_is_posterior_file(c.model))
        return cli_dist_sit_out("eval of a posterior or with --samples, --ood or --plots") ? CLI_OK
                                                                                           : cli_eval_uncertainty(&c, &u);
    return eval_model(&c, u.predictions, u.logits);
}
