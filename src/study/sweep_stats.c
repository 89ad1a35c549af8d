/* Rank correlations of a sweep's measures with the generalization gap and
 * robust accuracy: Kendall's tau-b and the granulated Psi of Jiang et al.
 * 2020 ("Fantastic generalization measures and where to find them"). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skeptic/study.h"

double sk_stat_kendall_tau_b(const double *a, const double *b, int n)
{
    /* O(n^2): sweeps have tens to thousands of rows */
    double conc = 0, disc = 0, tie_a = 0, tie_b = 0, pairs = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) continue;
        for (int j = i + 1; j < n; j++) {
            if (isnan(a[j]) || isnan(b[j])) continue;
            pairs++;
            double da = a[i] - a[j], db = b[i] - b[j];
            if (da == 0 && db == 0) {
                tie_a++;
                tie_b++;
            } else if (da == 0) {
                tie_a++;
            } else if (db == 0) {
                tie_b++;
            } else if ((da > 0) == (db > 0)) {
                conc++;
            } else {
                disc++;
            }
        }
    }
    double den = sqrt((pairs - tie_a) * (pairs - tie_b));
    if (pairs < 1 || !(den > 0)) return NAN;
    return (conc - disc) / den;
}

double sk_stat_psi(const double *measure, const double *target, int n, const int *key, int n_axes, double *m_axis)
{
    double *ga = sk_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double *gb = sk_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    bool *used = sk_malloc(sizeof(bool) * (size_t)(n > 0 ? n : 1));
    double psi_sum = 0;
    int psi_n = 0;
    for (int ax = 0; ax < n_axes; ax++) {
        double sum = 0;
        int groups = 0;
        if (ga && gb && used) {
            memset(used, 0, sizeof(bool) * (size_t)n);
            for (int r = 0; r < n; r++) {
                if (used[r]) continue;
                /* the group of r: rows equal to r in every axis but ax */
                int k = 0;
                for (int q = r; q < n; q++) {
                    if (used[q]) continue;
                    bool same = true;
                    for (int b = 0; b < n_axes && same; b++)
                        if (b != ax && key[(size_t)q * n_axes + b] != key[(size_t)r * n_axes + b]) same = false;
                    if (!same) continue;
                    used[q] = true;
                    ga[k] = measure[q];
                    gb[k] = target[q];
                    k++;
                }
                double t = sk_stat_kendall_tau_b(ga, gb, k);
                if (!isnan(t)) {
                    sum += t;
                    groups++;
                }
            }
        }
        double m = groups ? sum / groups : NAN;
        if (m_axis) m_axis[ax] = m;
        if (groups) {
            psi_sum += m;
            psi_n++;
        }
    }
    sk_free(ga);
    sk_free(gb);
    sk_free(used);
    return psi_n ? psi_sum / psi_n : NAN;
}

/* Fields of a row that describe the configuration, not a measure of it. */
static bool is_config_field(const char *k)
{
    static const char *const cfg[] = { "index", "config_hash", "measure_hash", "weights_hash", "depth", "width",
                                       "optimizer", "batch", "lr", "seed", "adv", "bayes", "epochs", "n_train" };
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++)
        if (!strcmp(k, cfg[i])) return true;
    return false;
}

static const char *const targets[] = { "gap_err", "gap_loss", "pgd_acc" };
#define N_TARGETS 3
static const char *const axes[] = { "depth", "width", "optimizer", "batch", "lr", "seed", "adv", "bayes" };
#define N_AXES 8
#define MAX_AXIS_VALUES 256

struct table {
    int n, cap;
    double *v;    /* [cap][SK_SWEEP_MAX_MEASURES + N_TARGETS] */
    int *key;     /* [cap][N_AXES] */
    char (*vals)[MAX_AXIS_VALUES][64]; /* [N_AXES]: the distinct values seen */
    int n_vals[N_AXES];
};
#define COLS (SK_SWEEP_MAX_MEASURES + N_TARGETS)

static int grow(struct table *t)
{
    if (t->n < t->cap) return SK_OK;
    int nc = t->cap ? t->cap * 2 : 64;
    double *v = sk_malloc(sizeof(double) * (size_t)nc * COLS);
    int *k = sk_malloc(sizeof(int) * (size_t)nc * N_AXES);
    if (!v || !k) {
        sk_free(v);
        sk_free(k);
        return SK_ENOMEM;
    }
    if (t->n) {
        memcpy(v, t->v, sizeof(double) * (size_t)t->n * COLS);
        memcpy(k, t->key, sizeof(int) * (size_t)t->n * N_AXES);
    }
    sk_free(t->v);
    sk_free(t->key);
    t->v = v;
    t->key = k;
    t->cap = nc;
    return SK_OK;
}

static int axis_value(struct table *t, int a, const cJSON *item, const char *path, int ln)
{
    char buf[64];
    if (cJSON_IsString(item)) snprintf(buf, sizeof buf, "%s", item->valuestring);
    else if (cJSON_IsNumber(item)) snprintf(buf, sizeof buf, "%.17g", item->valuedouble);
    else return sk_error(SK_EFORMAT, "sweep rows %s line %d: the axis field \"%s\" is missing", path, ln, axes[a]);
    for (int i = 0; i < t->n_vals[a]; i++)
        if (!strcmp(t->vals[a][i], buf)) return i;
    if (t->n_vals[a] == MAX_AXIS_VALUES)
        return sk_error(SK_EFORMAT, "sweep rows %s: more than %d values of \"%s\"", path, MAX_AXIS_VALUES, axes[a]);
    memcpy(t->vals[a][t->n_vals[a]], buf, sizeof buf);
    return t->n_vals[a]++;
}

/* One row into the table: its axis keys, then each numeric field under its
 * measure's column (new measures join in order of first appearance). */
static int add_row(struct table *t, struct sk_sweep_summary *out, const cJSON *j, const char *path, int ln)
{
    int rc = grow(t);
    if (rc) return rc;
    double *v = t->v + (size_t)t->n * COLS;
    for (int c = 0; c < COLS; c++) v[c] = NAN;
    for (int a = 0; a < N_AXES; a++) {
        int k = axis_value(t, a, cJSON_GetObjectItemCaseSensitive(j, axes[a]), path, ln);
        if (k < 0) return k;
        t->key[(size_t)t->n * N_AXES + a] = k;
    }
    for (const cJSON *it = j->child; it; it = it->next) {
        if (!it->string || is_config_field(it->string)) continue;
        if (!cJSON_IsNumber(it) && !cJSON_IsNull(it)) continue;
        double x = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        /* a target is a measure too: tau of the loss gap with the error gap, of PGD accuracy with the gap */
        for (int g = 0; g < N_TARGETS; g++)
            if (!strcmp(it->string, targets[g])) v[SK_SWEEP_MAX_MEASURES + g] = x;
        int col = -1;
        for (int m = 0; col < 0 && m < out->n_measures; m++)
            if (!strcmp(it->string, out->measure[m])) col = m;
        if (col < 0) {
            if (out->n_measures == SK_SWEEP_MAX_MEASURES) continue;
            col = out->n_measures++;
            snprintf(out->measure[col], sizeof out->measure[col], "%s", it->string);
            for (int r = 0; r < t->n; r++) t->v[(size_t)r * COLS + col] = NAN;
        }
        v[col] = x;
    }
    t->n++;
    return SK_OK;
}

static int read_rows(const char *path, struct table *t, struct sk_sweep_summary *out)
{
    FILE *f = fopen(path, "r");
    if (!f) return sk_error(SK_EIO, "sweep rows %s: %s", path, strerror(errno));
    size_t cap = 1 << 16;
    char *line = sk_malloc(cap);
    int rc = line ? SK_OK : SK_ENOMEM, ln = 0;
    while (!rc) {
        size_t len = 0;
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n') {
            if (len + 2 > cap) {
                char *nl = sk_malloc(cap * 2);
                if (!nl) {
                    rc = SK_ENOMEM;
                    break;
                }
                memcpy(nl, line, len);
                sk_free(line);
                line = nl;
                cap *= 2;
            }
            line[len++] = (char)ch;
        }
        if (rc || (ch == EOF && len == 0)) break;
        line[len] = 0;
        ln++;
        if (ch == EOF) break; /* a torn last line: the row was never finished */
        cJSON *j = cJSON_Parse(line);
        if (!j || !cJSON_IsObject(j)) rc = sk_error(SK_EFORMAT, "sweep rows %s line %d: not a JSON object", path, ln);
        else rc = add_row(t, out, j, path, ln);
        cJSON_Delete(j);
    }
    sk_free(line);
    fclose(f);
    return rc;
}

int sk_sweep_summarize(const char *path, struct sk_sweep_summary *out)
{
    memset(out, 0, sizeof *out);
    struct table t = { 0 };
    t.vals = sk_calloc(N_AXES, sizeof *t.vals);
    if (!t.vals) return SK_ENOMEM;
    int rc = read_rows(path, &t, out);
    double *a = NULL, *b = NULL;
    if (!rc && t.n > 0) {
        a = sk_malloc(sizeof(double) * (size_t)t.n);
        b = sk_malloc(sizeof(double) * (size_t)t.n);
        if (!a || !b) rc = SK_ENOMEM;
    }
    if (!rc) {
        out->n_rows = t.n;
        out->n_targets = N_TARGETS;
        for (int g = 0; g < N_TARGETS; g++) snprintf(out->target[g], sizeof out->target[g], "%s", targets[g]);
        for (int m = 0; m < out->n_measures; m++) {
            double s = 0;
            int nf = 0;
            for (int r = 0; r < t.n; r++) {
                double x = t.v[(size_t)r * COLS + m];
                a[r] = x;
                if (isfinite(x)) {
                    s += x;
                    nf++;
                }
            }
            out->mean[m] = nf ? s / nf : NAN;
            out->n_finite[m] = nf;
            for (int g = 0; g < N_TARGETS; g++) {
                for (int r = 0; r < t.n; r++) b[r] = t.v[(size_t)r * COLS + SK_SWEEP_MAX_MEASURES + g];
                bool self = !strcmp(out->measure[m], targets[g]);
                out->tau[m][g] = self ? NAN : sk_stat_kendall_tau_b(a, b, t.n);
                out->psi[m][g] = self ? NAN : sk_stat_psi(a, b, t.n, t.key, N_AXES, NULL);
            }
        }
    }
    sk_free(a);
    sk_free(b);
    sk_free(t.v);
    sk_free(t.key);
    sk_free(t.vals);
    return rc;
}
