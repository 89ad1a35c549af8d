/* Model files: a model's tensors and its record (preprocessing, input range,
 * classes, split) in a safetensors file, through io's generic interface. */
#include "skeptic/model.h"
#include "model/model_record.h"
#include "model/onnx.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A spec may ask for this many values more than its file holds before the
 * load is refused up front: below it the tensor-by-tensor check names the
 * missing or misshapen tensor, above it the allocation itself is the risk. */
#define SPEC_SLACK ((size_t)1 << 20)

/* The model's record (preprocessing, range, classes, split) into meta,
 * replacing whatever the caller's metadata said: the model is the authority.
 * sk_meta_set moves a key to the end, so the keys come out in this order
 * whatever the caller's object held. */
static int write_record(const struct sk_model *m, struct sk_meta *meta)
{
    char *pj = m->prep ? sk_preprocess_to_json(m->prep) : NULL;
    if (m->prep && !pj) return SK_ENOMEM;
    int rc = sk_meta_set(meta, "skeptic.preprocess", pj ? pj : "{\"kind\":\"none\"}");
    sk_free(pj);
    if (rc) return rc;
    char *range = NULL;
    if (m->in_lo) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "lo", cJSON_CreateFloatArray(m->in_lo, m->in_dim));
        cJSON_AddItemToObject(r, "hi", cJSON_CreateFloatArray(m->in_hi, m->in_dim));
        range = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        if (!range) return SK_ENOMEM;
    }
    rc = sk_meta_set(meta, "skeptic.input_range", range);
    free(range);
    if (!rc) rc = sk_meta_set(meta, "skeptic.classes", m->data.classes[0] ? m->data.classes : NULL);
    char seed[40], frac[40];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->data.data_seed);
    snprintf(frac, sizeof frac, "%.9g", m->data.test_fraction);
    if (!rc) rc = sk_meta_set(meta, "skeptic.data_seed", m->data.has_split ? seed : NULL);
    if (!rc) rc = sk_meta_set(meta, "skeptic.test_fraction", m->data.has_split ? frac : NULL);
    return rc;
}

static const char *st_meta(const void *f, const char *key) { return sk_safetensors_meta(f, key); }

int sk_model_read_record(struct sk_model *m, const struct sk_safetensors *f)
{
    return sk_model_read_record_from(m, sk_safetensors_path(f), st_meta, f);
}

int sk_model_save_ex(const struct sk_model *m, const char *path, const char *metadata_json,
                     const struct sk_st_tensor *extra, int n_extra)
{
    struct sk_meta *meta = NULL;
    int rc = sk_meta_parse(metadata_json, &meta);
    if (rc) return rc;
    if (!(rc = sk_meta_set(meta, "format", "pt")) && !(rc = sk_meta_set(meta, "skeptic.spec", m->spec)))
        rc = write_record(m, meta);
    char *mj = rc ? NULL : sk_meta_print(meta);
    sk_meta_free(meta);
    if (rc) return rc;
    int n = m->n_tensors + n_extra;
    struct sk_st_tensor *ts = sk_calloc((size_t)(n ? n : 1), sizeof *ts);
    if (!mj || !ts) {
        sk_free(mj);
        sk_free(ts);
        return SK_ENOMEM;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const struct sk_tensor_info *ti = &m->tensors[i];
        ts[i].name = ti->name;
        ts[i].ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) ts[i].shape[d] = ti->shape[d];
        ts[i].data = sk_model_tensor_data(m, ti);
    }
    for (int i = 0; i < n_extra; i++) ts[m->n_tensors + i] = extra[i];
    rc = sk_safetensors_write(path, ts, n, mj);
    sk_free(mj);
    sk_free(ts);
    return rc;
}

int sk_model_save(const struct sk_model *m, const char *path, const char *metadata_json)
{
    return sk_model_save_ex(m, path, metadata_json, NULL, 0);
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && o < cap; d++) o += (size_t)snprintf(buf + o, cap - o, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

int sk_model_read_tensors(struct sk_model *m, const struct sk_safetensors *f)
{
    const char *path = sk_safetensors_path(f);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct sk_tensor_info *ti = &m->tensors[i];
        int ndim = 0;
        int64_t shape[4] = { 0 }, want[4];
        const float *data = sk_safetensors_get(f, ti->name, &ndim, shape);
        if (!data)
            return sk_error(SK_EFORMAT, "%s: tensor '%s' required by spec '%s' is missing", path, ti->name, m->spec);
        bool same = ndim == ti->ndim;
        size_t numel = 1;
        for (int d = 0; d < ti->ndim; d++) {
            want[d] = ti->shape[d];
            same = same && shape[d] == want[d];
            numel *= (size_t)want[d];
        }
        if (!same) {
            char a[96], b[96];
            shape_str(a, sizeof a, ndim, shape);
            shape_str(b, sizeof b, ti->ndim, want);
            return sk_error(SK_EFORMAT, "%s: tensor '%s' has shape %s but spec '%s' needs %s", path, ti->name, a,
                            m->spec, b);
        }
        for (size_t k = 0; k < numel; k++)
            if (!isfinite(data[k]))
                return sk_error(SK_ENONFINITE, "%s: tensor '%s' element %zu is %g", path, ti->name, k, data[k]);
        memcpy(sk_model_tensor_data(m, ti), data, sizeof(float) * numel);
    }
    for (int i = 0; i < sk_safetensors_count(f); i++) {
        const char *nm = sk_safetensors_name(f, i);
        size_t l = strlen(nm), s = strlen(".num_batches_tracked");
        if (!strncmp(nm, "skeptic.", 8) || (l > s && !strcmp(nm + l - s, ".num_batches_tracked"))) continue;
        if (!sk_model_tensor(m, nm))
            return sk_error(SK_EFORMAT, "%s: tensor '%s' is not part of spec '%s' (wrong --arch?)", path, nm,
                            m->spec);
    }
    return SK_OK;
}

int sk_model_check_file_size(const char *spec, const struct sk_safetensors *f)
{
    size_t np = 0, nb = 0, have = sk_safetensors_total_numel(f);
    /* a spec that does not parse is reported by sk_model_from_spec; running out of memory is reported here */
    int rc = sk_spec_size(spec, &np, &nb);
    if (rc == SK_ENOMEM) return rc;
    if (!rc && np + nb > have + SPEC_SLACK)
        return sk_error(SK_EFORMAT, "%s: spec '%.200s' has %zu parameters and buffers but the file holds %zu values",
                        sk_safetensors_path(f), spec, np + nb, have);
    return SK_OK;
}

struct sk_model *sk_model_load(const char *path, const char *spec, char **metadata_json_out)
{
    if (metadata_json_out) *metadata_json_out = NULL;
    if (sk_onnx_sniff(path)) {
        struct sk_model *m = sk_model_load_onnx(path, metadata_json_out);
        if (m && spec && strcmp(spec, m->spec)) {
            sk_error(SK_EINVAL, "%s: an ONNX file carries its architecture ('%s'); --arch '%s' does not match it",
                     path, m->spec, spec);
            sk_model_free(m);
            if (metadata_json_out) {
                sk_free(*metadata_json_out);
                *metadata_json_out = NULL;
            }
            return NULL;
        }
        return m;
    }
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (!f) return NULL;
    const char *fs = sk_safetensors_meta(f, "skeptic.spec");
    if (!spec) spec = fs;
    if (!spec) {
        sk_error(SK_EINVAL,
                 "%s: the file names no architecture (no __metadata__ \"skeptic.spec\", e.g. written by PyTorch): "
                 "give one with --arch",
                 path);
        sk_safetensors_free(f);
        return NULL;
    }
    /* the spec's size against the file's tensors before anything is allocated: a
     * small file naming a huge spec is an error, not a huge allocation */
    if (sk_model_check_file_size(spec, f)) {
        sk_safetensors_free(f);
        return NULL;
    }
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: %s", path, sk_last_error());
        sk_error(SK_EFORMAT, "%s", msg);
        sk_safetensors_free(f);
        return NULL;
    }
    if (sk_model_read_tensors(m, f) || sk_model_read_record(m, f)) {
        sk_model_free(m);
        sk_safetensors_free(f);
        return NULL;
    }
    if (metadata_json_out && !(*metadata_json_out = sk_safetensors_meta_json(f))) {
        sk_model_free(m);
        m = NULL;
    }
    sk_safetensors_free(f);
    return m;
}

uint64_t sk_model_weights_hash(const struct sk_model *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)m->params;
    for (size_t i = 0; i < m->n_params * sizeof(float); i++) h = (h ^ p[i]) * 0x100000001b3ull;
    p = (const unsigned char *)m->buffers;
    for (size_t i = 0; i < m->n_buffers * sizeof(float); i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
