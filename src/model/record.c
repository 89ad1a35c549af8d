/* What a model was trained on: the record written into its file. */
#include <stdio.h>
#include <string.h>

#include "skeptic/model.h"
#include "model/model_record.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

int sk_model_record_data(struct sk_model *m, const char *data, const char *classes, uint64_t data_seed,
                         float test_fraction, const struct sk_dataset *train, enum sk_prep_kind prep)
{
    struct sk_data_record *r = &m->data;
    memset(r, 0, sizeof *r);
    if (classes && strlen(classes) >= sizeof r->classes)
        return sk_error(SK_EINVAL, "the class list '%.40s...' is longer than %zu characters", classes,
                        sizeof r->classes - 1);
    if (classes) snprintf(r->classes, sizeof r->classes, "%s", classes);
    /* the effective values, so that a later request without them opens the same split */
    r->data_seed = data_seed ? data_seed : 1;
    r->test_fraction = test_fraction > 0 ? test_fraction : 0.2f;
    r->has_split = sk_data_split_by_seed(data);
    struct sk_preprocess *p = sk_preprocess_fit(train, prep);
    int rc = p ? sk_model_set_preprocess(m, p) : SK_ENOMEM;
    sk_preprocess_free(p);
    return rc ? rc : sk_model_set_range(m, train);
}

/* "skeptic.input_range" into m->in_lo / in_hi. */
static int read_range(struct sk_model *m, const char *path, const char *rj)
{
    cJSON *r = cJSON_Parse(rj);
    cJSON *lo = r ? cJSON_GetObjectItemCaseSensitive(r, "lo") : NULL, *hi = r ? cJSON_GetObjectItemCaseSensitive(r, "hi") : NULL;
    int D = m->in_dim;
    bool ok = cJSON_IsArray(lo) && cJSON_IsArray(hi) && cJSON_GetArraySize(lo) == D && cJSON_GetArraySize(hi) == D;
    float *a = ok ? sk_malloc(sizeof(float) * (size_t)D) : NULL, *b = ok ? sk_malloc(sizeof(float) * (size_t)D) : NULL;
    if (ok && (!a || !b)) {
        cJSON_Delete(r);
        sk_free(a);
        sk_free(b);
        return sk_error(SK_ENOMEM, "%s: out of memory reading \"skeptic.input_range\"", path);
    }
    int j = 0;
    /* finite as float32, as they are kept */
    for (cJSON *p = ok ? lo->child : NULL, *q = ok ? hi->child : NULL; ok && p && q; p = p->next, q = q->next, j++) {
        ok = cJSON_IsNumber(p) && cJSON_IsNumber(q) && fabs(p->valuedouble) <= FLT_MAX &&
             fabs(q->valuedouble) <= FLT_MAX && p->valuedouble <= q->valuedouble;
        if (ok) {
            a[j] = (float)p->valuedouble;
            b[j] = (float)q->valuedouble;
        }
    }
    cJSON_Delete(r);
    if (!ok) {
        sk_free(a);
        sk_free(b);
        return sk_error(SK_EFORMAT, "%s: __metadata__ \"skeptic.input_range\" is not {\"lo\":[%d numbers], "
                        "\"hi\":[%d numbers]} with lo <= hi", path, D, D);
    }
    sk_free(m->in_lo);
    sk_free(m->in_hi);
    m->in_lo = a;
    m->in_hi = b;
    return SK_OK;
}

int sk_model_read_record_from(struct sk_model *m, const char *path, const char *(*meta)(const void *ctx, const char *key),
                              const void *ctx)
{
    const char *pj = meta(ctx, "skeptic.preprocess");
    if (pj) {
        struct sk_preprocess *p = sk_preprocess_from_json(pj);
        if (!p) return sk_error(SK_EFORMAT, "%s: __metadata__ \"skeptic.preprocess\": %s", path, sk_last_error());
        int rc = p->kind != SK_PREP_NONE && p->dim != m->in_dim
                     ? sk_error(SK_EFORMAT, "%s: the preprocessing record has %d features, model '%s' takes %d", path,
                                p->dim, m->spec, m->in_dim)
                     : sk_model_set_preprocess(m, p);
        sk_preprocess_free(p);
        if (rc) {
            if (rc != SK_EFORMAT) sk_error(SK_EFORMAT, "%s: preprocessing record: %s", path, sk_last_error());
            return SK_EFORMAT;
        }
    }
    const char *rj = meta(ctx, "skeptic.input_range");
    int rc = rj ? read_range(m, path, rj) : SK_OK;
    if (rc) return rc;
    const char *cl = meta(ctx, "skeptic.classes");
    if (cl) {
        if (strlen(cl) >= sizeof m->data.classes || strspn(cl, "0123456789,") != strlen(cl))
            return sk_error(SK_EFORMAT, "%s: __metadata__ \"skeptic.classes\" is not a list like 6,0", path);
        snprintf(m->data.classes, sizeof m->data.classes, "%s", cl);
    }
    const char *ds = meta(ctx, "skeptic.data_seed"), *tf = meta(ctx, "skeptic.test_fraction");
    if (ds || tf) {
        char *e1 = NULL, *e2 = NULL;
        unsigned long long seed = ds ? strtoull(ds, &e1, 10) : 1;
        double frac = tf ? strtod(tf, &e2) : 0.2;
        if ((ds && (e1 == ds || *e1)) || (tf && (e2 == tf || *e2)) || !(frac > 0 && frac < 1))
            return sk_error(SK_EFORMAT, "%s: __metadata__ data split (skeptic.data_seed '%s', skeptic.test_fraction "
                            "'%s') is not a seed and a fraction in (0,1)", path, ds ? ds : "", tf ? tf : "");
        m->data.has_split = true;
        m->data.data_seed = seed ? seed : 1;
        m->data.test_fraction = (float)frac;
    }
    return SK_OK;
}
