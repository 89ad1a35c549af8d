/* Posterior files: a model file (the mean / MAP / member 0 under the plain
 * nn.Sequential names, so every posterior file also loads as a plain model)
 * plus the method's extra tensors under prefixes, settings in __metadata__. */
#include "bayes/bayes_impl.h"
#include "model/onnx.h"
#include "skeptic/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One extra tensor per model tensor (params only), named prefix + name. */
static int add_prefixed(const struct sk_model *m, const char *prefix, const float *base, struct sk_st_tensor *ts,
                        char (*names)[80], int *n)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const struct sk_tensor_info *ti = &m->tensors[t];
        if (ti->buffer) continue;
        snprintf(names[*n], 80, "%s%s", prefix, ti->name);
        ts[*n].name = names[*n];
        ts[*n].ndim = ti->ndim;
        for (int d = 0; d < 4; d++) ts[*n].shape[d] = d < ti->ndim ? ti->shape[d] : 0;
        ts[*n].data = base + ti->off;
        (*n)++;
    }
    return SK_OK;
}

int sk_bayes_save(const struct sk_posterior *p, const char *path)
{
    const struct sk_model *m = p->model;
    if (p->method == SK_BAYES_VI && !p->rho) return sk_error(SK_ESTATE, "the VI posterior has not been trained (no rho)");
    if (p->method == SK_BAYES_LAPLACE && p->ll_layer < 0)
        return sk_error(SK_ESTATE, "the Laplace posterior has not been fitted");
    int per = m->n_tensors, cap = per * (p->n_members + 2) + 8;
    struct sk_st_tensor *ts = sk_calloc((size_t)cap, sizeof *ts);
    char (*names)[80] = sk_calloc((size_t)cap, sizeof *names);
    if (!ts || !names) {
        sk_free(ts);
        sk_free(names);
        return SK_ENOMEM;
    }
    int n = 0;
    char meta[1024];
    int len = snprintf(meta, sizeof meta, "{\"skeptic.method\":\"%s\",\"skeptic.temperature\":\"%.9g\"",
                       sk_bayes_method_name(p->method), p->temperature);
    switch (p->method) {
    case SK_BAYES_VI:
        add_prefixed(m, "rho.", p->rho, ts, names, &n);
        len += snprintf(meta + len, sizeof meta - (size_t)len,
                        ",\"skeptic.vi.prior\":\"%s\",\"skeptic.vi.prior_sigma\":\"%.9g\",\"skeptic.vi.mix_pi\":\"%.9g\","
                        "\"skeptic.vi.mix_s1\":\"%.9g\",\"skeptic.vi.mix_s2\":\"%.9g\",\"skeptic.vi.init_sigma\":\"%.9g\","
                        "\"skeptic.vi.kl_weight\":\"%.9g\"",
                        p->vi.prior == SK_PRIOR_MIXTURE ? "mixture" : "gaussian", p->vi.prior_sigma, p->vi.mix_pi,
                        p->vi.mix_s1, p->vi.mix_s2, p->vi.init_sigma, p->vi.kl_weight);
        break;
    case SK_BAYES_ENSEMBLE:
    case SK_BAYES_SGLD:
        for (int i = 0; i < p->n_members; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "%s%d.", p->method == SK_BAYES_ENSEMBLE ? "member" : "sample", i);
            add_prefixed(m, pre, p->members + (size_t)i * m->n_params, ts, names, &n);
        }
        len += snprintf(meta + len, sizeof meta - (size_t)len, ",\"skeptic.members\":\"%d\"", p->n_members);
        break;
    case SK_BAYES_LAPLACE: {
        int D1 = p->ll_d1, K = p->ll_k, PK = K * D1;
        bool kfac = p->laplace.hessian == SK_LAPLACE_KFAC;
        struct { const char *name; const float *d; int64_t r, c; } ex[4] = {
            { "laplace.A_vec", p->ll_avec, D1, D1 }, { "laplace.A_val", p->ll_aval, D1, 0 },
            { "laplace.G_vec", p->ll_gvec, K, K }, { "laplace.G_val", p->ll_gval, K, 0 },
        };
        if (kfac) {
            for (int i = 0; i < 4; i++) {
                ts[n].name = ex[i].name;
                ts[n].ndim = ex[i].c ? 2 : 1;
                ts[n].shape[0] = ex[i].r;
                ts[n].shape[1] = ex[i].c;
                ts[n].data = ex[i].d;
                n++;
            }
        } else {
            ts[n] = (struct sk_st_tensor){ "laplace.cov", 2, { PK, PK, 0, 0 }, p->ll_cov };
            n++;
            ts[n] = (struct sk_st_tensor){ "laplace.cov_sqrt", 2, { PK, PK, 0, 0 }, p->ll_cov_sqrt };
            n++;
        }
        len += snprintf(meta + len, sizeof meta - (size_t)len,
                        ",\"skeptic.laplace.hessian\":\"%s\",\"skeptic.laplace.prior_precision\":\"%.9g\","
                        "\"skeptic.laplace.probit\":\"%d\"",
                        kfac ? "kfac" : "full", p->prior_precision, p->laplace.probit ? 1 : 0);
        break;
    }
    default: break;
    }
    snprintf(meta + len, sizeof meta - (size_t)len, "}");
    int rc = sk_model_save_ex(m, path, meta, ts, n);
    sk_free(ts);
    sk_free(names);
    return rc;
}

static int get_prefixed(const struct sk_safetensors *f, const struct sk_model *m, const char *prefix, float *base,
                        const char *path)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const struct sk_tensor_info *ti = &m->tensors[t];
        if (ti->buffer) continue;
        char name[96];
        snprintf(name, sizeof name, "%s%s", prefix, ti->name);
        int nd;
        int64_t sh[8];
        const float *d = sk_safetensors_get(f, name, &nd, sh);
        size_t cnt = 1;
        for (int i = 0; i < ti->ndim; i++) cnt *= (size_t)ti->shape[i];
        size_t have = 1;
        if (d)
            for (int i = 0; i < nd; i++) have *= (size_t)sh[i];
        if (!d || have != cnt)
            return sk_error(SK_EFORMAT, "%s: tensor '%s' is %s (%zu values expected)", path, name,
                            d ? "of the wrong size" : "missing", cnt);
        memcpy(base + ti->off, d, sizeof(float) * cnt);
    }
    return SK_OK;
}

static const float *get_exact(const struct sk_safetensors *f, const char *name, size_t want, const char *path)
{
    int nd;
    int64_t sh[8];
    const float *d = sk_safetensors_get(f, name, &nd, sh);
    size_t have = 1;
    if (d)
        for (int i = 0; i < nd; i++) have *= (size_t)sh[i];
    if (!d || have != want) {
        sk_error(SK_EFORMAT, "%s: tensor '%s' is %s (%zu values expected)", path, name, d ? "of the wrong size" : "missing",
                 want);
        return NULL;
    }
    return d;
}

static float *dup_floats(const float *d, size_t n)
{
    float *o = sk_malloc(sizeof(float) * (n ? n : 1));
    if (o) memcpy(o, d, sizeof(float) * n);
    return o;
}

static int get_buffers(const struct sk_safetensors *f, struct sk_model *m, const char *path)
{
    for (int t = 0; t < m->n_tensors; t++) {
        const struct sk_tensor_info *ti = &m->tensors[t];
        if (!ti->buffer) continue;
        size_t cnt = 1;
        for (int i = 0; i < ti->ndim; i++) cnt *= (size_t)ti->shape[i];
        const float *d = get_exact(f, ti->name, cnt, path);
        if (!d) return SK_EFORMAT;
        memcpy(m->buffers + ti->off, d, sizeof(float) * cnt);
    }
    return SK_OK;
}

static const char *meta_get(const struct sk_safetensors *f, const char *key, char *buf, size_t cap)
{
    const char *v = sk_safetensors_meta(f, key);
    if (!v) return NULL;
    snprintf(buf, cap, "%s", v);
    return buf;
}

struct sk_posterior *sk_bayes_load(const char *path)
{
    /* an ONNX network is a deterministic model */
    if (sk_onnx_sniff(path)) {
        struct sk_model *om = sk_model_load_onnx(path, NULL);
        struct sk_posterior *op = om ? sk_bayes_new(om, SK_BAYES_DETERMINISTIC) : NULL;
        if (om && !op) sk_model_free(om);
        return op;
    }
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (!f) return NULL;
    const char *spec = sk_safetensors_meta(f, "skeptic.spec");
    if (!spec) {
        sk_error(SK_EFORMAT, "%s: no skeptic.spec in the metadata (a file saved by PyTorch? load it with "
                 "sk_model_load and an explicit spec)", path);
        sk_safetensors_free(f);
        return NULL;
    }
    if (sk_model_check_file_size(spec, f)) {
        sk_safetensors_free(f);
        return NULL;
    }
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m || get_prefixed(f, m, "", m->params, path) || get_buffers(f, m, path) || sk_model_read_record(m, f)) {
        sk_model_free(m);
        sk_safetensors_free(f);
        return NULL;
    }
    char buf[256];
    const char *ms = meta_get(f, "skeptic.method", buf, sizeof buf);
    int method = ms ? sk_bayes_method_parse(ms) : SK_BAYES_DETERMINISTIC;
    if (method < 0) {
        sk_error(SK_EFORMAT, "%s: unknown method '%s' in the metadata", path, ms);
        sk_safetensors_free(f);
        sk_model_free(m);
        return NULL;
    }
    struct sk_posterior *p = sk_bayes_new(m, (enum sk_bayes_method)method);
    if (!p) {
        sk_safetensors_free(f);
        sk_model_free(m);
        return NULL;
    }
    const char *v;
    if ((v = meta_get(f, "skeptic.temperature", buf, sizeof buf))) p->temperature = strtof(v, NULL);
    if (!(p->temperature > 0)) p->temperature = 1.0f;
    size_t P = m->n_params;
    if (method == SK_BAYES_VI) {
        if ((v = meta_get(f, "skeptic.vi.prior", buf, sizeof buf)))
            p->vi.prior = !strcmp(v, "mixture") ? SK_PRIOR_MIXTURE : SK_PRIOR_GAUSSIAN;
        if ((v = meta_get(f, "skeptic.vi.prior_sigma", buf, sizeof buf))) p->vi.prior_sigma = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.vi.mix_pi", buf, sizeof buf))) p->vi.mix_pi = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.vi.mix_s1", buf, sizeof buf))) p->vi.mix_s1 = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.vi.mix_s2", buf, sizeof buf))) p->vi.mix_s2 = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.vi.init_sigma", buf, sizeof buf))) p->vi.init_sigma = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.vi.kl_weight", buf, sizeof buf))) p->vi.kl_weight = strtof(v, NULL);
        p->rho = sk_malloc(sizeof(float) * P);
        if (!p->rho || get_prefixed(f, m, "rho.", p->rho, path)) goto fail;
    } else if (method == SK_BAYES_ENSEMBLE || method == SK_BAYES_SGLD) {
        int M = (v = meta_get(f, "skeptic.members", buf, sizeof buf)) ? atoi(v) : 0;
        if (M < 1 || M > 100000) {
            sk_error(SK_EFORMAT, "%s: metadata skeptic.members = %d is not a member count", path, M);
            goto fail;
        }
        p->members = sk_malloc(sizeof(float) * P * (size_t)M);
        if (!p->members) goto fail;
        p->n_members = M;
        for (int i = 0; i < M; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "%s%d.", method == SK_BAYES_ENSEMBLE ? "member" : "sample", i);
            if (get_prefixed(f, m, pre, p->members + (size_t)i * P, path)) goto fail;
        }
    } else if (method == SK_BAYES_LAPLACE) {
        int li = m->n_layers - 1;
        if (m->layers[li].kind != SK_LAYER_DENSE || m->layers[li].from[0] != li - 1) {
            sk_error(SK_EFORMAT, "%s: a Laplace file whose model does not end with a dense layer reading the layer before it", path);
            goto fail;
        }
        p->ll_layer = li;
        p->ll_d1 = m->layers[li].in[0] + 1;
        p->ll_k = m->layers[li].units;
        int D1 = p->ll_d1, K = p->ll_k;
        size_t PK = (size_t)K * D1;
        v = meta_get(f, "skeptic.laplace.hessian", buf, sizeof buf);
        p->laplace.hessian = v && !strcmp(v, "full") ? SK_LAPLACE_FULL : SK_LAPLACE_KFAC;
        if ((v = meta_get(f, "skeptic.laplace.prior_precision", buf, sizeof buf)))
            p->prior_precision = strtof(v, NULL);
        if ((v = meta_get(f, "skeptic.laplace.probit", buf, sizeof buf))) p->laplace.probit = atoi(v) != 0;
        if (!(p->prior_precision > 0)) {
            sk_error(SK_EFORMAT, "%s: Laplace prior precision missing or not positive", path);
            goto fail;
        }
        const float *a;
        if (p->laplace.hessian == SK_LAPLACE_KFAC) {
            if (!(a = get_exact(f, "laplace.A_vec", (size_t)D1 * D1, path)) || !(p->ll_avec = dup_floats(a, (size_t)D1 * D1)))
                goto fail;
            if (!(a = get_exact(f, "laplace.A_val", (size_t)D1, path)) || !(p->ll_aval = dup_floats(a, (size_t)D1)))
                goto fail;
            if (!(a = get_exact(f, "laplace.G_vec", (size_t)K * K, path)) || !(p->ll_gvec = dup_floats(a, (size_t)K * K)))
                goto fail;
            if (!(a = get_exact(f, "laplace.G_val", (size_t)K, path)) || !(p->ll_gval = dup_floats(a, (size_t)K)))
                goto fail;
        } else {
            if (!(a = get_exact(f, "laplace.cov", PK * PK, path)) || !(p->ll_cov = dup_floats(a, PK * PK))) goto fail;
            if (!(a = get_exact(f, "laplace.cov_sqrt", PK * PK, path)) || !(p->ll_cov_sqrt = dup_floats(a, PK * PK)))
                goto fail;
        }
    }
    sk_safetensors_free(f);
    return p;
fail:
    sk_safetensors_free(f);
    sk_bayes_free(p);
    return NULL;
}
