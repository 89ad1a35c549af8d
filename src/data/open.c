/* Opening datasets by name or path, stratified splits, class subsets,
 * preprocessing (statistics from the training split, carried as JSON). */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/data.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

int sk_data_split(const struct sk_dataset *d, float fraction, uint64_t seed, struct sk_dataset **a,
                  struct sk_dataset **b)
{
    *a = *b = NULL;
    if (!(fraction >= 0 && fraction < 1)) return sk_error(SK_EINVAL, "split fraction %g must be in [0,1)", fraction);
    int K = d->n_classes > 0 ? d->n_classes : 1;
    int *perm = sk_malloc(sizeof(int) * (size_t)(d->n + 1)), *in_b = sk_calloc((size_t)(d->n + 1), sizeof(int));
    int *cnt = sk_calloc((size_t)K, sizeof(int)), *taken = sk_calloc((size_t)K, sizeof(int));
    int *ia = sk_malloc(sizeof(int) * (size_t)(d->n + 1)), *ib = sk_malloc(sizeof(int) * (size_t)(d->n + 1));
    int rc = SK_ENOMEM;
    if (perm && in_b && cnt && taken && ia && ib) {
        for (int i = 0; i < d->n; i++) {
            perm[i] = i;
            cnt[d->y[i] < K ? d->y[i] : 0]++;
        }
        struct sk_rng r = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_SPLIT);
        sk_rng_shuffle(&r, perm, d->n);
        for (int i = 0; i < d->n; i++) {
            int c = d->y[perm[i]] < K ? d->y[perm[i]] : 0;
            if (taken[c] < (int)lround(fraction * cnt[c])) {
                taken[c]++;
                in_b[perm[i]] = 1;
            }
        }
        int na = 0, nb = 0;
        for (int i = 0; i < d->n; i++) {
            if (in_b[i])
                ib[nb++] = i;
            else
                ia[na++] = i;
        }
        *a = sk_dataset_subset(d, ia, na);
        *b = sk_dataset_subset(d, ib, nb);
        if (*a && *b) {
            rc = SK_OK;
        } else {
            sk_dataset_free(*a);
            sk_dataset_free(*b);
            *a = *b = NULL;
        }
    }
    sk_free(perm);
    sk_free(in_b);
    sk_free(cnt);
    sk_free(taken);
    sk_free(ia);
    sk_free(ib);
    return rc;
}

struct sk_dataset *sk_data_select_classes(const struct sk_dataset *d, const int *classes, int k)
{
    if (k < 1) {
        sk_error(SK_EINVAL, "class selection is empty");
        return NULL;
    }
    for (int i = 0; i < k; i++) {
        if (classes[i] < 0 || (d->n_classes > 0 && classes[i] >= d->n_classes)) {
            sk_error(SK_EINVAL, "class %d is not one of the %d classes of %s", classes[i], d->n_classes, d->name);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (classes[j] == classes[i]) {
                sk_error(SK_EINVAL, "class %d is selected twice", classes[i]);
                return NULL;
            }
    }
    int *idx = sk_malloc(sizeof(int) * (size_t)(d->n + 1));
    if (!idx) return NULL;
    int n = 0;
    for (int i = 0; i < d->n; i++)
        for (int j = 0; j < k; j++)
            if (d->y[i] == classes[j]) idx[n++] = i;
    struct sk_dataset *s = sk_dataset_subset(d, idx, n);
    if (s) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < k; j++)
                if (s->y[i] == classes[j]) {
                    s->y[i] = j;
                    break;
                }
        s->n_classes = k;
    }
    sk_free(idx);
    return s;
}

long sk_data_first_nonfinite(const struct sk_dataset *d)
{
    for (size_t i = 0; i < (size_t)d->n * d->dim; i++)
        if (!isfinite(d->x[i])) return (long)i;
    return -1;
}

/* "name:key=val,key=val" options of the synthetic sets. */
static int synth_opts(const char *spec, struct sk_data_options *o)
{
    const char *p = strchr(spec, ':');
    if (!p) return SK_OK;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", p + 1);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        if (!eq) return sk_error(SK_EINVAL, "data '%s': option '%s' is not key=value", spec, tok);
        *eq = 0;
        const char *v = eq + 1;
        double x = strtod(v, &end);
        if (end == v || *end) return sk_error(SK_EINVAL, "data '%s': %s=%s is not a number", spec, tok, v);
        if (!strcmp(tok, "n") && x >= 1 && x <= 1e7)
            o->n = (int)x;
        else if (!strcmp(tok, "noise") && x >= 0)
            o->noise = (float)x;
        else if (!strcmp(tok, "k") && x >= 2 && x <= 1000)
            o->k = (int)x;
        else if (!strcmp(tok, "dim") && x >= 1 && x <= 100000)
            o->dim = (int)x;
        else if (!strcmp(tok, "seed") && x >= 0)
            o->seed = (uint64_t)x;
        else
            return sk_error(SK_EINVAL, "data '%s': option %s=%s is unknown or out of range (n, noise, k, dim, seed)",
                            spec, tok, v);
    }
    return SK_OK;
}

static struct sk_dataset *pick_split(struct sk_dataset *all, const char *split, float frac, uint64_t seed)
{
    if (!all) return NULL;
    if (!strcmp(split, "all")) return all;
    struct sk_dataset *a, *b;
    int rc = sk_data_split(all, frac, seed, &a, &b);
    char name[64];
    memcpy(name, all->name, sizeof name);
    sk_dataset_free(all);
    if (rc) return NULL;
    bool train = !strcmp(split, "train");
    sk_dataset_free(train ? b : a);
    struct sk_dataset *r = train ? a : b;
    snprintf(r->name, sizeof r->name, "%.50s-%s", name, split);
    return r;
}

struct sk_dataset *sk_data_open(const char *name, const char *split, const struct sk_data_options *opt)
{
    struct sk_data_options o = { 0 };
    if (opt) o = *opt;
    if (!split) split = "train";
    if (strcmp(split, "train") && strcmp(split, "test") && strcmp(split, "all")) {
        sk_error(SK_EINVAL, "split '%s' is not 'train', 'test' or 'all'", split);
        return NULL;
    }
    if (!name || !*name) {
        sk_error(SK_EINVAL, "no dataset named (give a name such as fashion-mnist, or a path)");
        return NULL;
    }
    uint64_t seed = o.seed ? o.seed : 1;
    float frac = o.test_fraction > 0 ? o.test_fraction : 0.2f;
    bool test = !strcmp(split, "test");
    if (!strcmp(name, "fashion-mnist") || !strcmp(name, "mnist")) {
        bool fm = name[0] == 'f';
        if (!strcmp(split, "all")) {
            struct sk_dataset *a = fm ? sk_data_fashion_mnist(NULL, "train") : sk_data_mnist(NULL, "train");
            struct sk_dataset *b = a ? (fm ? sk_data_fashion_mnist(NULL, "test") : sk_data_mnist(NULL, "test")) : NULL;
            struct sk_dataset *d = b ? sk_dataset_new(a->n + b->n, 1, 28, 28, 10) : NULL;
            if (d) {
                memcpy(d->x, a->x, sizeof(float) * (size_t)a->n * 784);
                memcpy(d->x + (size_t)a->n * 784, b->x, sizeof(float) * (size_t)b->n * 784);
                memcpy(d->y, a->y, sizeof(int) * (size_t)a->n);
                memcpy(d->y + a->n, b->y, sizeof(int) * (size_t)b->n);
                snprintf(d->name, sizeof d->name, "%s-all", name);
            }
            sk_dataset_free(a);
            sk_dataset_free(b);
            return d;
        }
        return fm ? sk_data_fashion_mnist(NULL, split) : sk_data_mnist(NULL, split);
    }
    const char *colon = strchr(name, ':');
    size_t base_len = colon ? (size_t)(colon - name) : strlen(name);
    if ((base_len == 5 && !strncmp(name, "moons", 5)) || (base_len == 7 && !strncmp(name, "spirals", 7)) ||
        (base_len == 5 && !strncmp(name, "blobs", 5))) {
        if (synth_opts(name, &o)) return NULL;
        seed = o.seed ? o.seed : 1;
        int n = o.n ? o.n : 1000, k = o.k ? o.k : 3, dim = o.dim ? o.dim : 2;
        /* one draw of 2n rows: train is the first n, test the last n (same
         * task — the blob centres, too, come from the seed) */
        struct sk_dataset *all;
        if (name[0] == 'm')
            all = sk_data_moons(2 * n, o.noise > 0 ? o.noise : 0.1f, seed);
        else if (name[0] == 's')
            all = sk_data_spirals(2 * n, k, o.noise > 0 ? o.noise : 0.2f, seed);
        else
            all = sk_data_blobs(2 * n, k, dim, o.noise > 0 ? o.noise : 3.0f, seed);
        if (!all || !strcmp(split, "all")) {
            if (all) snprintf(all->name, sizeof all->name, "%.*s-all", (int)base_len, name);
            return all;
        }
        int *idx = sk_malloc(sizeof(int) * (size_t)n);
        struct sk_dataset *d = NULL;
        if (idx) {
            for (int i = 0; i < n; i++) idx[i] = test ? n + i : i;
            d = sk_dataset_subset(all, idx, n);
        }
        sk_free(idx);
        sk_dataset_free(all);
        if (d) snprintf(d->name, sizeof d->name, "%.*s-%s", (int)base_len, name, split);
        return d;
    }
    if (is_dir(name)) {
        char ip[1200], lp[1200];
        const char *pre = test ? "t10k" : "train";
        if (!strcmp(split, "all")) {
            sk_error(SK_EINVAL, "%s: an IDX directory has 'train' and 'test' splits, not 'all'", name);
            return NULL;
        }
        snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", name, pre);
        snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", name, pre);
        if (!is_file(ip)) {
            snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte", name, pre);
            snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte", name, pre);
        }
        if (!is_file(ip)) {
            sk_error(SK_EIO, "%s: directory has no %s-images-idx3-ubyte[.gz] (an IDX directory is laid out like MNIST)",
                     name, pre);
            return NULL;
        }
        struct sk_dataset *d = sk_data_load_idx(ip, lp);
        if (d) snprintf(d->name, sizeof d->name, "%.50s-%s", strrchr(name, '/') ? strrchr(name, '/') + 1 : name, split);
        return d;
    }
    if (!is_file(name)) {
        sk_error(SK_EIO,
                 "%s: no such file or directory, and not a known dataset (fashion-mnist, mnist, moons, spirals, blobs)",
                 name);
        return NULL;
    }
    if (ends_with(name, ".csv") || ends_with(name, ".CSV"))
        return pick_split(sk_data_load_csv(name, o.label_column, o.header), split, frac, seed);
    if (ends_with(name, ".npy"))
        return pick_split(sk_data_load_npy(name, o.labels_path), split, frac, seed);
    /* anything else: an IDX images file */
    char lp[1200];
    const char *labels = o.labels_path;
    if (!labels) {
        const char *im = strstr(name, "images-idx3");
        if (!im) {
            sk_error(SK_EINVAL,
                     "%s: unknown kind of file (expected .csv, .npy, or IDX images named *images-idx3*; for IDX name the "
                     "labels with opt.labels_path)",
                     name);
            return NULL;
        }
        snprintf(lp, sizeof lp, "%.*slabels-idx1%s", (int)(im - name), name, im + 11);
        labels = lp;
    }
    return pick_split(sk_data_load_idx(name, labels), split, frac, seed);
}

bool sk_data_split_by_seed(const char *name) { return name && !is_dir(name) && is_file(name); }

/* ----------------------------------------------------------- preprocessing */

static const char *prep_names[] = { "none", "minmax", "standardize" };

int sk_prep_kind_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, prep_names[i])) return i;
    return -1;
}

const char *sk_prep_kind_name(enum sk_prep_kind k) { return (unsigned)k < 3 ? prep_names[k] : "?"; }

void sk_preprocess_free(struct sk_preprocess *p)
{
    if (!p) return;
    sk_free(p->shift);
    sk_free(p->scale);
    sk_free(p);
}

static struct sk_preprocess *prep_new(enum sk_prep_kind kind, int dim)
{
    struct sk_preprocess *p = sk_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kind = kind;
    p->dim = dim;
    if (kind != SK_PREP_NONE) {
        p->shift = sk_calloc((size_t)dim, sizeof(float));
        p->scale = sk_calloc((size_t)dim, sizeof(float));
        if (!p->shift || !p->scale) {
            sk_preprocess_free(p);
            return NULL;
        }
    }
    return p;
}

struct sk_preprocess *sk_preprocess_clone(const struct sk_preprocess *p)
{
    struct sk_preprocess *c = prep_new(p->kind, p->dim);
    if (c && p->kind != SK_PREP_NONE) {
        memcpy(c->shift, p->shift, sizeof(float) * (size_t)p->dim);
        memcpy(c->scale, p->scale, sizeof(float) * (size_t)p->dim);
    }
    return c;
}

struct sk_preprocess *sk_preprocess_fit(const struct sk_dataset *d, enum sk_prep_kind kind)
{
    if ((unsigned)kind > SK_PREP_STANDARDIZE) {
        sk_error(SK_EINVAL, "unknown preprocessing %d", (int)kind);
        return NULL;
    }
    struct sk_preprocess *p = prep_new(kind, d->dim);
    if (!p || kind == SK_PREP_NONE) return p;
    /* Images (H x W > 1): one statistic per channel over all its pixels, as
     * torchvision's Normalize. Per pixel, a border pixel that is almost always
     * 0 gets a scale of 1/std in the thousands: the model becomes that
     * sensitive to it, and an eps-ball in pixels is huge there (adversarial
     * training at eps 0.1 on Fashion-MNIST then reaches a third of the
     * robustness of training on raw pixels). Tables: one per feature. */
    int D = d->dim, HW = d->h * d->w > 1 && d->c * d->h * d->w == D ? d->h * d->w : 1, G = D / HW;
    for (int gi = 0; gi < G; gi++) {
        double lo = INFINITY, hi = -INFINITY, s = 0, ss = 0;
        size_t cnt = (size_t)d->n * HW;
        for (int i = 0; i < d->n; i++)
            for (int q = 0; q < HW; q++) {
                double v = d->x[(size_t)i * D + (size_t)gi * HW + q];
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
                s += v;
            }
        double mean = cnt ? s / cnt : 0;
        for (int i = 0; i < d->n; i++)
            for (int q = 0; q < HW; q++) {
                double v = d->x[(size_t)i * D + (size_t)gi * HW + q] - mean;
                ss += v * v;
            }
        double sd = cnt ? sqrt(ss / cnt) : 0;
        /* (x - shift) must stay a float for every training value: columns near
         * +-FLT_MAX of both signs would overflow to inf, and training would fail
         * later with a misleading "loss became nan" */
        double far = fmax(fabs(hi - (kind == SK_PREP_MINMAX ? lo : mean)), fabs(lo - (kind == SK_PREP_MINMAX ? lo : mean)));
        if (cnt && !(far <= FLT_MAX)) {
            sk_error(SK_ENONFINITE, "%s: feature %d spans [%g, %g]: its %s overflows float32; rescale the data first",
                     sk_prep_kind_name(kind), gi * HW, lo, hi, kind == SK_PREP_MINMAX ? "range" : "spread around the mean");
            sk_preprocess_free(p);
            return NULL;
        }
        float shift, scale;
        if (kind == SK_PREP_MINMAX) {
            shift = cnt ? (float)lo : 0.0f;
            scale = cnt && hi > lo ? (float)(1.0 / (hi - lo)) : 1.0f;
        } else {
            shift = (float)mean;
            scale = sd > 1e-12 ? (float)(1.0 / sd) : 1.0f;
        }
        for (int q = 0; q < HW; q++) {
            p->shift[(size_t)gi * HW + q] = shift;
            p->scale[(size_t)gi * HW + q] = scale;
        }
    }
    return p;
}

void sk_preprocess_apply(const struct sk_preprocess *p, struct sk_dataset *d)
{
    if (!p || p->kind == SK_PREP_NONE) return;
    SK_ASSERT(p->dim == d->dim);
    for (size_t i = 0; i < (size_t)d->n; i++) {
        float *r = d->x + i * (size_t)d->dim;
        for (int j = 0; j < d->dim; j++) r[j] = (r[j] - p->shift[j]) * p->scale[j];
    }
}

char *sk_preprocess_to_json(const struct sk_preprocess *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "kind", sk_prep_kind_name(p->kind));
    if (p->kind != SK_PREP_NONE) {
        cJSON_AddItemToObject(o, "shift", cJSON_CreateFloatArray(p->shift, p->dim));
        cJSON_AddItemToObject(o, "scale", cJSON_CreateFloatArray(p->scale, p->dim));
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *r = t ? sk_strdup(t) : NULL;
    free(t);
    return r;
}

struct sk_preprocess *sk_preprocess_from_json(const char *json)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    cJSON *k = o ? cJSON_GetObjectItemCaseSensitive(o, "kind") : NULL;
    int kind = cJSON_IsString(k) ? sk_prep_kind_parse(k->valuestring) : -1;
    struct sk_preprocess *p = NULL;
    if (kind < 0) {
        sk_error(SK_EFORMAT, "preprocessing record is not {\"kind\": none|minmax|standardize, ...}");
        goto out;
    }
    if (kind == SK_PREP_NONE) {
        p = prep_new(SK_PREP_NONE, 0);
        goto out;
    }
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shift"), *sc = cJSON_GetObjectItemCaseSensitive(o, "scale");
    int D = cJSON_IsArray(sh) ? cJSON_GetArraySize(sh) : -1;
    if (D < 1 || !cJSON_IsArray(sc) || cJSON_GetArraySize(sc) != D) {
        sk_error(SK_EFORMAT, "preprocessing record needs arrays 'shift' and 'scale' of equal length");
        goto out;
    }
    p = prep_new((enum sk_prep_kind)kind, D);
    if (!p) goto out;
    int j = 0;
    for (cJSON *a = sh->child, *b = sc->child; a && b; a = a->next, b = b->next, j++) {
        /* finite as a float: 1e39 is a finite double but an infinite shift */
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || !(fabs(a->valuedouble) <= FLT_MAX) ||
            !(fabs(b->valuedouble) <= FLT_MAX)) {
            sk_error(SK_EFORMAT, "preprocessing record: value %d is not a finite float32 number", j);
            sk_preprocess_free(p);
            p = NULL;
            goto out;
        }
        p->shift[j] = (float)a->valuedouble;
        p->scale[j] = (float)b->valuedouble;
    }
out:
    cJSON_Delete(o);
    return p;
}
