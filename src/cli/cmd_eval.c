/* skeptic eval: accuracy, loss, per-class accuracy, confusion matrix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/eval_uncertainty.h"

int cmd_eval(int argc, char **argv)
{
    struct cli_common c = cli_common_defaults();
    const char *pred_path = NULL, *logits_path = NULL;
    struct cli_unc_opts u = { 0 };
    struct cli_opt opts[] = {
        CLI_MODEL_OPTS(c), CLI_DATA_OPTS(c), CLI_THREADS_OPT(c), CLI_JSON_OPT(c),
        { "predictions", CLI_STR, &pred_path, "FILE.npy", "write the log-probabilities (n x classes, float32) as .npy" },
        { "logits", CLI_STR, &logits_path, "FILE.npy", "write the logits (n x classes, float32) as .npy" }, CLI_UNC_OPTS(u), { 0 },
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
    if (c.threads) sk_set_threads(c.threads);
    /* Bayesian posteriors and uncertainty flags: see eval_uncertainty.c */
    u.predictions = pred_path;
    u.logits = logits_path;
    if (u.samples || u.ood || u.plots || cli_is_posterior_file(c.model)) return cli_eval_uncertainty(&c, &u);
    char *meta = NULL;
    struct sk_model *m = cli_load_model(&c, &meta);
    if (!m) return CLI_FAIL;
    struct sk_dataset *d = cli_load_eval_data(&c, m, meta);
    int status = CLI_FAIL;
    int K = m->n_classes;
    float *lp = NULL;
    long *conf = NULL;
    if (!d) goto out;
    if (d->n < 1) {
        status = cli_fail("%s: no rows to evaluate", c.data);
        goto out;
    }
    lp = sk_malloc(sizeof(float) * (size_t)d->n * K);
    conf = sk_calloc((size_t)K * K, sizeof(long));
    if (!lp || !conf || sk_model_log_probs(m, d->x, d->n, lp)) {
        status = cli_fail_lib();
        goto out;
    }
    if (pred_path) {
        int64_t shp[2] = { d->n, K };
        if (sk_npy_write_f32(pred_path, lp, 2, shp)) {
            status = cli_fail_lib();
            goto out;
        }
    }
    if (logits_path) {
        /* the raw scores, for comparison with other frameworks' logits */
        int64_t shp[2] = { d->n, K };
        float *z = sk_malloc(sizeof(float) * (size_t)d->n * K);
        int wrc = !z || sk_model_logits(m, d->x, d->n, z) || sk_npy_write_f32(logits_path, z, 2, shp);
        sk_free(z);
        if (wrc) {
            status = cli_fail_lib();
            goto out;
        }
    }
    double nll = 0;
    long correct = 0;
    for (int i = 0; i < d->n; i++) {
        const float *r = lp + (size_t)i * K;
        int b = 0;
        for (int k = 1; k < K; k++)
            if (r[k] > r[b]) b = k;
        conf[(size_t)d->y[i] * K + b]++;
        correct += b == d->y[i];
        nll -= r[d->y[i]];
    }
    double acc = (double)correct / d->n, loss = nll / d->n;
    const char *split = c.split ? c.split : "test";
    if (c.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", c.model);
        cJSON_AddStringToObject(o, "data", c.data);
        cJSON_AddStringToObject(o, "split", split);
        cJSON_AddNumberToObject(o, "n", d->n);
        cJSON_AddNumberToObject(o, "n_classes", K);
        cli_json_num(o, "accuracy", acc);
        cli_json_num(o, "loss", loss);
        cJSON *pc = cJSON_AddArrayToObject(o, "per_class_accuracy");
        cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
        for (int k = 0; k < K; k++) {
            long tot = 0;
            cJSON *row = cJSON_CreateArray();
            for (int j = 0; j < K; j++) {
                tot += conf[(size_t)k * K + j];
                cJSON_AddItemToArray(row, cJSON_CreateNumber((double)conf[(size_t)k * K + j]));
            }
            cJSON_AddItemToArray(cm, row);
            cJSON_AddItemToArray(pc, tot ? cJSON_CreateNumber((double)conf[(size_t)k * K + k] / tot) : cJSON_CreateNull());
        }
        cli_json_print(o);
    } else {
        printf("model     %s (%s)\n", c.model, m->spec);
        printf("data      %s, split %s, %d rows\n", c.data, split, d->n);
        printf("accuracy  %.4f\nloss      %.4f\n\n", acc, loss);
        printf("class   rows  accuracy\n");
        for (int k = 0; k < K; k++) {
            long tot = 0;
            for (int j = 0; j < K; j++) tot += conf[(size_t)k * K + j];
            if (tot)
                printf("%5d %6ld  %.4f\n", k, tot, (double)conf[(size_t)k * K + k] / tot);
            else
                printf("%5d %6ld  -\n", k, tot);
        }
        printf("\nconfusion matrix (rows: true class, columns: predicted)\n      ");
        for (int j = 0; j < K; j++) printf("%6d", j);
        printf("\n");
        for (int k = 0; k < K; k++) {
            printf("%5d ", k);
            for (int j = 0; j < K; j++) printf("%6ld", conf[(size_t)k * K + j]);
            printf("\n");
        }
    }
    status = CLI_OK;
out:
    sk_free(lp);
    sk_free(conf);
    sk_free(meta);
    sk_dataset_free(d);
    sk_model_free(m);
    return status;
}
