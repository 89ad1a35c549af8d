/* The --track curvature lines of skeptic train's --log. */
#include "cli/train_track.h"

#include <math.h>
#include <stdlib.h>

static int probe(struct cli_track *k, struct sk_trainer *t)
{
    struct sk_curvature_track_point p;
    int rc = sk_curvature_track_probe(k->tr, &p);
    if (rc) return rc;
    /* the step size of the step just taken (of the next one before any) */
    long s = t->opt->t > 0 ? t->opt->t - 1 : 0;
    double lr = sk_optim_lr_at(&t->opt->cfg, s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "probe", "curvature");
    cJSON_AddNumberToObject(o, "step", (double)t->st.step);
    /* epochs done, fractional: inside on_step st.batch is still the batch just taken */
    int per_epoch = (t->n_train + t->cfg.batch - 1) / t->cfg.batch;
    cJSON_AddNumberToObject(o, "epochs_done", t->st.step ? t->st.epoch + (double)(t->st.batch + 1) / per_epoch : 0.0);
    cli_json_num(o, "lr", lr);
    cli_json_num(o, "two_over_lr", 2.0 / lr);
    cli_json_num(o, "lambda_max", p.lambda_max);
    cli_json_num(o, "lambda_max_resid", p.lambda_resid);
    cli_json_num(o, "trace", p.trace);
    cli_json_num(o, "trace_se", p.trace_se);
    cli_json_num(o, "b_simple", p.b_simple);
    cli_json_num(o, "grad_norm", p.grad_norm);
    cli_json_num(o, "weight_norm", p.weight_norm);
    cli_json_num(o, "train_loss", p.train_loss);
    cli_json_num(o, "train_acc", p.train_acc);
    cli_json_num(o, "test_loss", p.test_loss);
    cli_json_num(o, "test_acc", p.test_acc);
    cli_json_num(o, "seconds", p.seconds);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return SK_ENOMEM;
    fprintf(k->log, "%s\n", txt);
    fflush(k->log);
    free(txt);
    return SK_OK;
}

int cli_track_start(struct cli_track *k, struct sk_model *m, const float *x, const int *y, int n, const float *xt,
                    const int *yt, int nt, const struct sk_curvature_track_config *cfg, long every, FILE *log,
                    struct sk_trainer *t)
{
    k->every = every;
    k->log = log;
    if (!(k->tr = sk_curvature_track_new(m, x, y, n, xt, yt, nt, cfg))) return cli_fail_lib();
    if (t->st.step == 0 && probe(k, t)) return cli_fail_lib();
    return CLI_OK;
}

int cli_track_on_step(void *ctx, struct sk_trainer *t)
{
    struct cli_track *k = ctx;
    return t->st.step % k->every == 0 ? probe(k, t) : SK_OK;
}

void cli_track_free(struct cli_track *k)
{
    sk_curvature_track_free(k->tr);
    k->tr = NULL;
}
