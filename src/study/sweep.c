/* Sweeps: a grid of training configurations, each trained and measured into
 * one JSON row (see study.h). The grid and its points, the configuration
 * hash, the per-configuration run and the row file. */
#define _POSIX_C_SOURCE 200809L /* strtok_r, fsync, ftruncate, mkdir */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skeptic/certify.h"
#include "skeptic/curvature.h"
#include "skeptic/robust.h"
#include "skeptic/study.h"
#include "study/sweep_impl.h"

static const char *const axis_names[SK_SWEEP_N_AXES] = { "depth", "width", "optimizer", "batch",
                                                         "lr",    "seed",  "adv",       "bayes" };

const char *sk_sweep_axis_name(enum sk_sweep_axis a)
{
    return (unsigned)a < SK_SWEEP_N_AXES ? axis_names[a] : "?";
}

int sk_sweep_axis_parse(const char *s)
{
    for (int a = 0; s && a < SK_SWEEP_N_AXES; a++)
        if (!strcmp(s, axis_names[a])) return a;
    return -1;
}

/* "mcdropout" is accepted beside bayes.h's "mc-dropout"; "none" is the
 * deterministic network. */
static int bayes_parse(const char *s)
{
    if (!strcmp(s, "none")) return SK_BAYES_DETERMINISTIC;
    if (!strcmp(s, "mcdropout")) return SK_BAYES_MCDROPOUT;
    return sk_bayes_method_parse(s);
}

static int optimizer_parse(const char *s)
{
    return strcmp(s, "sam") ? sk_optim_kind_parse(s) : SK_OPT_MOMENTUM;
}

static bool parse_long(const char *s, long lo, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo) return false;
    *v = x;
    return true;
}

/* Checks one value of axis a; SK_EINVAL naming both. */
static int check_value(enum sk_sweep_axis a, const char *v)
{
    long l;
    char *end;
    switch (a) {
    case SK_SWEEP_DEPTH:
    case SK_SWEEP_WIDTH:
    case SK_SWEEP_BATCH:
        if (!parse_long(v, 1, &l) || l > 1 << 20)
            return sk_error(SK_EINVAL, "sweep.%s value '%s' is not an integer in [1, 1048576]", axis_names[a], v);
        return SK_OK;
    case SK_SWEEP_SEED:
        if (!parse_long(v, 0, &l))
            return sk_error(SK_EINVAL, "sweep.seed value '%s' is not an integer >= 0", v);
        return SK_OK;
    case SK_SWEEP_LR: {
        if (!strcmp(v, "auto")) return SK_OK;
        double x = strtod(v, &end);
        if (end == v || *end || !(x > 0) || !isfinite(x))
            return sk_error(SK_EINVAL, "sweep.lr value '%s' is neither 'auto' nor a number > 0", v);
        return SK_OK;
    }
    case SK_SWEEP_OPTIMIZER:
        if (optimizer_parse(v) < 0)
            return sk_error(SK_EINVAL, "sweep.optimizer value '%s' is not sgd, momentum, nesterov, adam, adamw, "
                            "rmsprop or sam", v);
        return SK_OK;
    case SK_SWEEP_ADV:
        if (sk_robust_kind_parse(v) < 0)
            return sk_error(SK_EINVAL, "sweep.adv value '%s' is not an adversarial training kind (none, pgd, fgsm, "
                            "trades, ibp, ...)", v);
        return SK_OK;
    case SK_SWEEP_BAYES:
        if (bayes_parse(v) < 0)
            return sk_error(SK_EINVAL, "sweep.bayes value '%s' is not none, mc-dropout, ensemble, vi, sgld or laplace",
                            v);
        return SK_OK;
    default: return sk_error(SK_EINVAL, "sweep: axis %d does not exist", (int)a);
    }
}

int sk_sweep_grid_set(struct sk_sweep_grid *g, enum sk_sweep_axis a, const char *list)
{
    if ((unsigned)a >= SK_SWEEP_N_AXES) return sk_error(SK_EINVAL, "sweep: axis %d does not exist", (int)a);
    if (!list || !*list) return sk_error(SK_EINVAL, "sweep.%s: the list of values is empty", axis_names[a]);
    char buf[1024];
    if (strlen(list) >= sizeof buf)
        return sk_error(SK_EINVAL, "sweep.%s: the list of values is longer than %zu characters", axis_names[a],
                        sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", list);
    struct sk_sweep_grid t = *g;
    t.n[a] = 0;
    /* empty entries ("1,,2", a trailing comma) are mistakes, not skipped */
    char *p = buf;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = 0;
        while (*p == ' ') p++;
        size_t len = strlen(p);
        while (len > 0 && p[len - 1] == ' ') p[--len] = 0;
        if (!*p) return sk_error(SK_EINVAL, "sweep.%s: empty value in the list '%s'", axis_names[a], list);
        if (len >= sizeof t.value[a][0])
            return sk_error(SK_EINVAL, "sweep.%s value '%s' is longer than %zu characters", axis_names[a], p,
                            sizeof t.value[a][0] - 1);
        int rc = check_value(a, p);
        if (rc) return rc;
        if (t.n[a] == SK_SWEEP_MAX_VALUES)
            return sk_error(SK_EINVAL, "sweep.%s: more than %d values", axis_names[a], SK_SWEEP_MAX_VALUES);
        for (int i = 0; i < t.n[a]; i++)
            if (!strcmp(t.value[a][i], p))
                return sk_error(SK_EINVAL, "sweep.%s value '%s' is given twice", axis_names[a], p);
        snprintf(t.value[a][t.n[a]++], sizeof t.value[a][0], "%s", p);
        if (!comma) break;
        p = comma + 1;
    }
    *g = t;
    return SK_OK;
}

int sk_sweep_grid_read(struct sk_sweep_grid *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return sk_error(SK_EIO, "grid file %s: %s", path, strerror(errno));
    char line[1200];
    int ln = 0, rc = SK_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        size_t len = strlen(s);
        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
            s[--len] = 0;
        if (!*s) continue;
        char *sep = strpbrk(s, "=:");
        if (!sep) {
            rc = sk_error(SK_EINVAL, "grid file %s line %d: expected 'AXIS = v1,v2,...', got '%s'", path, ln, s);
            break;
        }
        char *name_end = sep;
        while (name_end > s && (name_end[-1] == ' ' || name_end[-1] == '\t')) name_end--;
        *name_end = 0;
        char *vals = sep + 1;
        while (*vals == ' ' || *vals == '\t') vals++;
        int a = sk_sweep_axis_parse(s);
        if (a < 0) {
            rc = sk_error(SK_EINVAL, "grid file %s line %d: '%s' is no axis (depth, width, optimizer, batch, lr, seed, "
                          "adv, bayes)", path, ln, s);
            break;
        }
        if ((rc = sk_sweep_grid_set(g, (enum sk_sweep_axis)a, vals))) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sk_last_error());
            rc = sk_error(rc, "grid file %s line %d: %s", path, ln, msg);
        }
    }
    fclose(f);
    return rc;
}

long sk_sweep_grid_size(const struct sk_sweep_grid *g)
{
    long n = 1;
    for (int a = 0; a < SK_SWEEP_N_AXES; a++) n *= g->n[a] > 0 ? g->n[a] : 0;
    return n;
}

static float auto_lr(const char *opt)
{
    if (!strcmp(opt, "sgd")) return 0.1f;
    int k = optimizer_parse(opt);
    if (k == SK_OPT_ADAM || k == SK_OPT_ADAMW || k == SK_OPT_RMSPROP) return 1e-3f;
    return 0.01f;
}

int sk_sweep_point(const struct sk_sweep_grid *g, long index, struct sk_sweep_point *out)
{
    long size = sk_sweep_grid_size(g);
    if (index < 0 || index >= size)
        return sk_error(SK_EINVAL, "sweep: configuration %ld is outside the grid of %ld", index, size);
    memset(out, 0, sizeof *out);
    out->index = index;
    long r = index;
    for (int a = SK_SWEEP_N_AXES - 1; a >= 0; a--) {
        out->at[a] = (int)(r % g->n[a]);
        r /= g->n[a];
    }
    const char *v[SK_SWEEP_N_AXES];
    for (int a = 0; a < SK_SWEEP_N_AXES; a++) v[a] = g->value[a][out->at[a]];
    out->depth = atoi(v[SK_SWEEP_DEPTH]);
    out->width = atoi(v[SK_SWEEP_WIDTH]);
    out->batch = atoi(v[SK_SWEEP_BATCH]);
    out->optimizer = v[SK_SWEEP_OPTIMIZER];
    out->lr = strcmp(v[SK_SWEEP_LR], "auto") ? strtof(v[SK_SWEEP_LR], NULL) : auto_lr(out->optimizer);
    out->seed = strtoull(v[SK_SWEEP_SEED], NULL, 10);
    out->adv = sk_robust_kind_parse(v[SK_SWEEP_ADV]);
    out->bayes = bayes_parse(v[SK_SWEEP_BAYES]);
    return SK_OK;
}

struct sk_sweep_config sk_sweep_defaults(void)
{
    struct sk_sweep_config c;
    memset(&c, 0, sizeof c);
    const char *one[SK_SWEEP_N_AXES] = { "2", "256", "adam", "128", "auto", "1", "none", "none" };
    for (int a = 0; a < SK_SWEEP_N_AXES; a++) {
        c.grid.n[a] = 1;
        snprintf(c.grid.value[a][0], sizeof c.grid.value[a][0], "%s", one[a]);
    }
    c.data = "fashion-mnist";
    c.epochs = 5;
    c.n_test = 2000;
    c.n_adv = 500;
    c.n_suite = 200;
    c.n_ood = 2000;
    c.n_curv = 512;
    c.eps = 0.1f;
    c.cert_eps = 0.01f;
    c.pgd_steps = 10;
    c.suite_steps = 20;
    c.suite_queries = 500;
    c.samples = 20;
    c.attack_samples = 10;
    c.members = 5;
    c.dropout = 0.2f;
    c.clip_min = 0;
    c.clip_max = 1;
    return c;
}

int sk_sweep_check(const struct sk_sweep_config *o)
{
    const struct { const char *name; int v, min; } ints[] = {
        { "sweep.epochs", o->epochs, 1 },         { "sweep.n_test", o->n_test, 0 },
        { "sweep.n_adv", o->n_adv, 1 },           { "sweep.n_suite", o->n_suite, 0 },
        { "sweep.n_ood", o->n_ood, 0 },           { "sweep.n_curv", o->n_curv, 0 },
        { "sweep.pgd_steps", o->pgd_steps, 1 },   { "sweep.suite_steps", o->suite_steps, 1 },
        { "sweep.suite_queries", o->suite_queries, 1 }, { "sweep.samples", o->samples, 1 },
        { "sweep.attack_samples", o->attack_samples, 1 }, { "sweep.members", o->members, 1 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v < ints[i].min)
            return sk_error(SK_EINVAL, "sweep: %s %d must be >= %d", ints[i].name, ints[i].v, ints[i].min);
    if (!(o->eps > 0) || !isfinite(o->eps)) return sk_error(SK_EINVAL, "sweep: sweep.eps %g must be > 0", o->eps);
    if (!(o->adv_eps >= 0) || !isfinite(o->adv_eps))
        return sk_error(SK_EINVAL, "sweep: sweep.adv_eps %g must be >= 0", o->adv_eps);
    if (!(o->cert_eps >= 0) || !isfinite(o->cert_eps))
        return sk_error(SK_EINVAL, "sweep: sweep.cert_eps %g must be >= 0", o->cert_eps);
    if (!(o->dropout > 0 && o->dropout < 1))
        return sk_error(SK_EINVAL, "sweep: sweep.dropout %g must be in (0,1)", o->dropout);
    if (!(o->clip_min < o->clip_max))
        return sk_error(SK_EINVAL, "sweep: sweep.clip_min %g must be below sweep.clip_max %g", o->clip_min,
                        o->clip_max);
    if (!o->data) return sk_error(SK_EINVAL, "sweep: sweep.data is required");
    for (int a = 0; a < SK_SWEEP_N_AXES; a++) {
        if (o->grid.n[a] < 1) return sk_error(SK_EINVAL, "sweep: sweep.%s has no values", axis_names[a]);
        for (int i = 0; i < o->grid.n[a]; i++) {
            int rc = check_value((enum sk_sweep_axis)a, o->grid.value[a][i]);
            if (rc) return rc;
        }
    }
    return SK_OK;
}

/* ---------------- the sweep ---------------- */

uint64_t sk_sweep_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define fnv sk_sweep_fnv
#define FNV0 SK_SWEEP_FNV0

static uint64_t data_hash(const struct sk_dataset *d)
{
    uint64_t h = fnv(FNV0, &d->n, sizeof d->n);
    h = fnv(h, &d->dim, sizeof d->dim);
    h = fnv(h, d->x, sizeof(float) * (size_t)d->n * d->dim);
    return fnv(h, d->y, sizeof(int) * (size_t)d->n);
}

/* The canonical text of what makes configuration pt's model: every axis
 * value, the training budget and the training rows. */
static uint64_t config_hash(const struct sk_sweep *s, const struct sk_sweep_point *pt, uint64_t train_hash)
{
    const struct sk_sweep_config *o = &s->cfg;
    char t[1024];
    int n = snprintf(t, sizeof t,
                     "depth=%d;width=%d;optimizer=%s;batch=%d;lr=%.9g;seed=%" PRIu64 ";adv=%s;bayes=%s;epochs=%d;"
                     "adv_eps=%.9g;members=%d;dropout=%.9g;data=%s;train=%016" PRIx64,
                     pt->depth, pt->width, pt->optimizer, pt->batch, (double)pt->lr, pt->seed,
                     sk_robust_kind_name((enum sk_robust_kind)pt->adv),
                     sk_bayes_method_name((enum sk_bayes_method)pt->bayes), o->epochs,
                     (double)(o->adv_eps > 0 ? o->adv_eps : o->eps), o->members, (double)o->dropout, o->data,
                     train_hash);
    return fnv(FNV0, t, (size_t)n);
}

static uint64_t measure_hash(const struct sk_sweep *s)
{
    const struct sk_sweep_config *o = &s->cfg;
    char t[512];
    int n = snprintf(t, sizeof t,
                     "n_test=%d;n_adv=%d;n_suite=%d;n_ood=%d;n_curv=%d;eps=%.9g;cert_eps=%.9g;pgd_steps=%d;"
                     "suite_steps=%d;suite_queries=%d;samples=%d;attack_samples=%d;box=%.9g,%.9g",
                     o->n_test, o->n_adv, o->n_suite, o->n_ood, o->n_curv, (double)o->eps, (double)o->cert_eps,
                     o->pgd_steps, o->suite_steps, o->suite_queries, o->samples, o->attack_samples,
                     (double)o->clip_min, (double)o->clip_max);
    uint64_t h = fnv(FNV0, t, (size_t)n);
    h = fnv(h, "test", 4);
    h = fnv(h, &(uint64_t){ data_hash(s->test) }, 8);
    if (s->ood) h = fnv(h, &(uint64_t){ data_hash(s->ood) }, 8);
    return h;
}

struct sk_sweep *sk_sweep_new(const struct sk_sweep_config *cfg, const struct sk_dataset *train,
                              const struct sk_dataset *test, const struct sk_dataset *ood)
{
    if (sk_sweep_check(cfg)) return NULL;
    if (!train || !test || train->n < 1 || test->n < 1) {
        sk_error(SK_EINVAL, "sweep: the training and test rows are required");
        return NULL;
    }
    if (test->dim != train->dim || (ood && ood->dim != train->dim)) {
        sk_error(SK_EINVAL, "sweep: the training rows have %d values, the test rows %d%s%.0d", train->dim, test->dim,
                 ood ? ", the OOD rows " : "", ood ? ood->dim : 0);
        return NULL;
    }
    struct sk_sweep *s = sk_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cfg = *cfg;
    s->train = train;
    s->test = test;
    s->ood = ood;
    s->size = sk_sweep_grid_size(&cfg->grid);
    s->hash = sk_malloc(sizeof(uint64_t) * (size_t)s->size);
    s->done = sk_calloc((size_t)s->size, sizeof(bool));
    if (!s->hash || !s->done) {
        sk_sweep_free(s);
        return NULL;
    }
    uint64_t th = data_hash(train);
    for (long i = 0; i < s->size; i++) {
        struct sk_sweep_point pt;
        sk_sweep_point(&cfg->grid, i, &pt);
        s->hash[i] = config_hash(s, &pt, th);
    }
    s->measure_hash = measure_hash(s);
    return s;
}

void sk_sweep_free(struct sk_sweep *s)
{
    if (!s) return;
    sk_free(s->hash);
    sk_free(s->done);
    sk_free(s);
}

long sk_sweep_size(const struct sk_sweep *s)
{
    return s->size;
}

void sk_sweep_config_hash(const struct sk_sweep *s, long index, char *buf)
{
    snprintf(buf, 17, "%016" PRIx64, index >= 0 && index < s->size ? s->hash[index] : 0);
}

bool sk_sweep_finished(const struct sk_sweep *s, long index)
{
    return index >= 0 && index < s->size && s->done[index];
}

long sk_sweep_next(const struct sk_sweep *s, long from)
{
    for (long i = from < 0 ? 0 : from; i < s->size; i++)
        if (!s->done[i]) return i;
    return -1;
}

/* The index whose configuration hash is h (the row's own index first), or -1. */
static long find_hash(const struct sk_sweep *s, uint64_t h, long hint)
{
    if (hint >= 0 && hint < s->size && s->hash[hint] == h) return hint;
    for (long i = 0; i < s->size; i++)
        if (s->hash[i] == h) return i;
    return -1;
}

int sk_sweep_resume(struct sk_sweep *s, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? SK_OK : sk_error(SK_EIO, "sweep rows %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            char *t = sk_malloc(nc);
            if (!t) {
                sk_free(text);
                fclose(f);
                return SK_ENOMEM;
            }
            if (text) memcpy(t, text, len);
            sk_free(text);
            text = t;
            cap = nc;
        }
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    text[len] = 0;
    int rc = SK_OK, ln = 0;
    size_t pos = 0, good_end = 0;
    while (pos < len && !rc) {
        char *nl = memchr(text + pos, '\n', len - pos);
        ln++;
        if (!nl) break; /* torn: no newline */
        *nl = 0;
        cJSON *j = cJSON_Parse(text + pos);
        bool last = (size_t)(nl - text) + 1 >= len;
        if (!j || !cJSON_IsObject(j)) {
            cJSON_Delete(j);
            if (!last) {
                rc = sk_error(SK_EFORMAT, "sweep rows %s line %d: not a JSON object", path, ln);
                break;
            }
            break; /* a torn last line that happens to end in a newline */
        }
        const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "config_hash");
        const cJSON *mh = cJSON_GetObjectItemCaseSensitive(j, "measure_hash");
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(j, "index");
        if (cJSON_IsString(ch) && cJSON_IsString(mh)) {
            uint64_t h = strtoull(ch->valuestring, NULL, 16), m = strtoull(mh->valuestring, NULL, 16);
            long i = find_hash(s, h, cJSON_IsNumber(ix) ? (long)ix->valuedouble : -1);
            if (i >= 0 && m == s->measure_hash) s->done[i] = true;
        }
        cJSON_Delete(j);
        pos = (size_t)(nl - text) + 1;
        good_end = pos;
    }
    sk_free(text);
    if (rc) return rc;
    if (good_end < len) {
        /* cut the torn tail, so that the next row starts a line of its own */
        if (truncate(path, (off_t)good_end))
            return sk_error(SK_EIO, "sweep rows %s: cutting the torn last line at byte %zu: %s", path, good_end,
                            strerror(errno));
    }
    return SK_OK;
}

int sk_sweep_append(struct sk_sweep *s, const char *path, long index, const char *row)
{
    if (index < 0 || index >= s->size)
        return sk_error(SK_EINVAL, "sweep: configuration %ld is outside the grid of %ld", index, s->size);
    if (s->done[index]) return SK_OK;
    size_t n = strlen(row);
    char *line = sk_malloc(n + 2);
    if (!line) return SK_ENOMEM;
    memcpy(line, row, n);
    line[n] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        sk_free(line);
        return sk_error(SK_EIO, "sweep rows %s: %s", path, strerror(errno));
    }
    size_t off = 0;
    int rc = SK_OK;
    while (off < n + 1) {
        ssize_t w = write(fd, line + off, n + 1 - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = sk_error(SK_EIO, "sweep rows %s: writing row %ld: %s", path, index, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (!rc && fsync(fd)) rc = sk_error(SK_EIO, "sweep rows %s: fsync: %s", path, strerror(errno));
    if (close(fd) && !rc) rc = sk_error(SK_EIO, "sweep rows %s: close: %s", path, strerror(errno));
    sk_free(line);
    if (!rc) s->done[index] = true;
    return rc;
}

int sk_sweep_run(struct sk_sweep *s, const char *path, int (*on_row)(void *ctx, long index, const char *row),
                 void *ctx)
{
    for (long i = sk_sweep_next(s, 0); i >= 0; i = sk_sweep_next(s, i + 1)) {
        char *row = NULL;
        int rc = sk_sweep_run_one(s, i, &row);
        if (!rc) rc = sk_sweep_append(s, path, i, row);
        int stop = !rc && on_row ? on_row(ctx, i, row) : 0;
        sk_free(row);
        if (rc) return rc;
        if (stop) break;
    }
    return SK_OK;
}
