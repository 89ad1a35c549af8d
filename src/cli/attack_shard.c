/* skeptic attack over several ranks: see attack_shard.h. */
#include "cli/attack_shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_dist.h"

/* A rank's figures that are not per row. */
struct part_figs {
    long grad_evals, queries;
    int n_stages;
    int n_attacked[SK_ATTACK_MAX_STAGES], n_broken[SK_ATTACK_MAX_STAGES], standing[SK_ATTACK_MAX_STAGES];
    long stage_grads[SK_ATTACK_MAX_STAGES], stage_queries[SK_ATTACK_MAX_STAGES];
    double stage_seconds[SK_ATTACK_MAX_STAGES];
};

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* An empty result of n rows of D (arrays owned, freed by sk_attack_result_free). */
static struct sk_attack_result *whole_new(const struct sk_attack_result *r0, long n)
{
    struct sk_attack_result *w = sk_calloc(1, sizeof *w);
    if (!w) return NULL;
    *w = *r0;
    size_t nn = (size_t)n, D = (size_t)r0->dim;
    w->x_adv = sk_malloc(sizeof(float) * nn * D);
    w->pred_clean = sk_malloc(sizeof(int) * nn);
    w->pred_adv = sk_malloc(sizeof(int) * nn);
    w->target = sk_malloc(sizeof(int) * nn);
    w->clean_correct = sk_malloc(sizeof(bool) * nn);
    w->robust = sk_malloc(sizeof(bool) * nn);
    w->success = sk_malloc(sizeof(bool) * nn);
    w->norm_delta = sk_malloc(sizeof(float) * nn);
    w->min_norm = sk_malloc(sizeof(float) * nn);
    if (!w->x_adv || !w->pred_clean || !w->pred_adv || !w->target || !w->clean_correct || !w->robust || !w->success ||
        !w->norm_delta || !w->min_norm) {
        sk_attack_result_free(w);
        return NULL;
    }
    w->n = (int)n;
    return w;
}

/* The figures of the whole from its rows, as sk_attack_evaluate's finish
 * computes them (same order of summation), and from the ranks' counts. */
static int whole_figures(struct sk_attack_result *w, const struct part_figs *f, int P)
{
    long n = w->n, n_correct = 0, n_rob = 0, n_succ = 0, n_norm = 0;
    float *norms = sk_malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!norms) return SK_ENOMEM;
    for (long i = 0; i < n; i++) {
        n_correct += w->clean_correct[i];
        n_rob += w->robust[i];
        n_succ += w->success[i];
        if (w->success[i]) norms[n_norm++] = w->norm_delta[i];
    }
    w->clean_acc = n ? (double)n_correct / n : NAN;
    w->robust_acc = n ? (double)n_rob / n : NAN;
    w->robust_acc_se = n ? 0 : NAN; /* deterministic classifiers only */
    w->success_rate = n_correct ? (double)n_succ / n_correct : NAN;
    w->mean_norm = w->median_norm = NAN;
    if (n_norm) {
        double s = 0;
        for (long i = 0; i < n_norm; i++) s += norms[i];
        w->mean_norm = s / n_norm;
        qsort(norms, (size_t)n_norm, sizeof(float), cmp_float);
        w->median_norm = n_norm % 2 ? norms[n_norm / 2] : 0.5 * (norms[n_norm / 2 - 1] + norms[n_norm / 2]);
    }
    sk_free(norms);
    w->grad_evals = w->queries = 0;
    for (int s = 0; s < w->n_stages; s++) {
        struct sk_attack_stage *st = &w->stages[s];
        long standing = 0;
        st->n_attacked = st->n_broken = 0;
        st->grad_evals = st->queries = 0;
        st->seconds = 0;
        for (int r = 0; r < P; r++) {
            if (f[r].n_stages <= s) continue; /* a rank without rows */
            st->n_attacked += f[r].n_attacked[s];
            st->n_broken += f[r].n_broken[s];
            standing += f[r].standing[s];
            st->grad_evals += f[r].stage_grads[s];
            st->queries += f[r].stage_queries[s];
            st->seconds = fmax(st->seconds, f[r].stage_seconds[s]);
        }
        st->robust_acc = n ? (double)standing / n : NAN;
    }
    for (int r = 0; r < P; r++) {
        w->grad_evals += f[r].grad_evals;
        w->queries += f[r].queries;
    }
    /* the suite's gradient-masking audit, on the whole's last stage as run_stages words it */
    int ns = w->n_stages;
    bool masking = ns > 1 && !strcmp(w->stages[ns - 1].name, "square") && w->stages[ns - 1].n_broken > 0;
    int k = 0;
    for (int i = 0; i < w->n_warnings; i++)
        if (strncmp(w->warnings[i], "the black-box square attack broke", 33))
            memmove(w->warnings[k++], w->warnings[i], sizeof w->warnings[0]);
    w->n_warnings = k;
    w->warn_masking = masking;
    if (masking && w->n_warnings < SK_ATTACK_MAX_WARNINGS)
        snprintf(w->warnings[w->n_warnings++], sizeof w->warnings[0],
                 "the black-box square attack broke %d point(s) that the white-box attacks (apgd-ce, apgd-t, fmn) "
                 "left standing: a sign of gradient masking; trust the black-box figure",
                 w->stages[ns - 1].n_broken);
    return SK_OK;
}

/* Rank 0: the whole of the ranks' shares; the others: their own part back. */
static struct sk_attack_result *gather_whole(struct sk_attack_result *mine, long lo, long hi, long n, double t0)
{
    int P = sk_dist_size();
    struct part_figs f = { 0 }, *all = NULL;
    if (mine) {
        f.grad_evals = mine->grad_evals;
        f.queries = mine->queries;
        f.n_stages = mine->n_stages;
        for (int s = 0; s < mine->n_stages; s++) {
            f.n_attacked[s] = mine->stages[s].n_attacked;
            f.n_broken[s] = mine->stages[s].n_broken;
            f.standing[s] = (int)lround(mine->stages[s].robust_acc * mine->n);
            f.stage_grads[s] = mine->stages[s].grad_evals;
            f.stage_queries[s] = mine->stages[s].queries;
            f.stage_seconds[s] = mine->stages[s].seconds;
        }
    }
    bool root = sk_dist_rank() == 0;
    struct sk_attack_result *w = NULL;
    /* rank 0 always holds rows (cli_dist_shard), so mine is its template */
    if (root && (!(all = sk_malloc(sizeof *all * (size_t)P)) || !(w = whole_new(mine, n)))) {
        sk_free(all);
        cli_fail_lib();
        sk_dist_abort(sk_last_error(), CLI_FAIL);
        return NULL;
    }
    static const struct sk_attack_result none = { 0 };
    const struct sk_attack_result *m = mine ? mine : &none;
    size_t D = (size_t)(root ? mine->dim : (mine ? mine->dim : 0));
    int st = sk_dist_gather(&f, sizeof f, all, sizeof *all * (size_t)P);
    /* a rank without rows sends nothing: its sizes are 0 whatever D */
    if (!st) st = sk_dist_gather(m->x_adv, sizeof(float) * D * (size_t)(hi - lo), root ? w->x_adv : NULL, root ? sizeof(float) * D * (size_t)n : 0);
#define G(field, T)                                                                                                    \
    if (!st) st = sk_dist_gather(m->field, sizeof(T) * (size_t)(hi - lo), root ? w->field : NULL, root ? sizeof(T) * (size_t)n : 0)
    G(pred_clean, int);
    G(pred_adv, int);
    G(target, int);
    G(clean_correct, bool);
    G(robust, bool);
    G(success, bool);
    G(norm_delta, float);
    G(min_norm, float);
#undef G
    if (!st && root) st = whole_figures(w, all, P);
    sk_free(all);
    if (st) {
        sk_attack_result_free(w);
        cli_fail_lib();
        sk_dist_abort(sk_last_error(), CLI_FAIL);
        return NULL;
    }
    if (!root) return mine;
    w->seconds = sk_now() - t0;
    sk_attack_result_free(mine);
    return w;
}

struct sk_attack_result *cli_attack_evaluate(struct sk_classifier *c, const struct sk_attack_config *cfg,
                                             const float *x, const int *y, int n)
{
    if (!cli_dist_on() || c->stochastic) return sk_attack_evaluate(c, cfg, x, y, n);
    double t0 = sk_now();
    long lo, hi;
    cli_dist_shard(n, cfg->batch > 0 ? cfg->batch : 256, &lo, &hi);
    struct sk_attack_config sc = *cfg;
    sc.first_row = cfg->first_row + lo;
    if (sc.targets) sc.targets += lo;
    sc.audit = cfg->audit && sk_dist_rank() == 0;
    struct sk_attack_result *mine = NULL;
    if (hi > lo) {
        size_t D = (size_t)c->in_dim;
        mine = sk_attack_evaluate(c, &sc, x + (size_t)lo * D, y + lo, (int)(hi - lo));
        if (!mine) return NULL; /* the command fails, which ends the job */
    }
    struct sk_attack_result *w = gather_whole(mine, lo, hi, n, t0);
    if (!w && mine) return NULL;
    /* a rank without rows: an empty result so that the command goes on (and prints nothing) */
    return w ? w : sk_calloc(1, sizeof *w);
}

int cli_attack_curve(struct sk_classifier *c, const struct sk_attack_config *cfg, const float *eps_list, int n_eps,
                     const float *x, const int *y, int n, double *robust_acc, struct sk_attack_result **results)
{
    if (!cli_dist_on() || c->stochastic) return sk_attack_curve(c, cfg, eps_list, n_eps, x, y, n, robust_acc, results);
    double t0 = sk_now();
    long lo, hi;
    cli_dist_shard(n, cfg->batch > 0 ? cfg->batch : 256, &lo, &hi);
    struct sk_attack_config sc = *cfg;
    sc.first_row = cfg->first_row + lo;
    if (sc.targets) sc.targets += lo;
    sc.audit = cfg->audit && sk_dist_rank() == 0;
    size_t D = (size_t)c->in_dim;
    int rc = SK_OK;
    if (hi > lo) rc = sk_attack_curve(c, &sc, eps_list, n_eps, x + (size_t)lo * D, y + lo, (int)(hi - lo), robust_acc, results);
    if (rc) return rc;
    for (int e = 0; e < n_eps; e++) {
        struct sk_attack_result *mine = hi > lo ? results[e] : NULL;
        struct sk_attack_result *w = gather_whole(mine, lo, hi, n, t0);
        if (!w && mine) {
            results[e] = NULL;
            return SK_EIO;
        }
        results[e] = w ? w : sk_calloc(1, sizeof *w);
        if (!results[e]) return SK_ENOMEM;
        robust_acc[e] = results[e]->robust_acc;
    }
    return SK_OK;
}
