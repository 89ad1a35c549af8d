/* safetensors read/write, atomic file writes, model files and checkpoints.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data
 * area; every tensor's data_offsets are relative to the start of the data
 * area. The header is padded with spaces to a multiple of 8 bytes (as the
 * Hugging Face writer does) so that the data area stays 8-byte aligned. */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/io.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is refused before it is parsed. */
#define MAX_HEADER_BYTES (100u << 20)

/* ------------------------------------------------------------ atomic writes */

static long fail_write_after = -1;

/* the temporary file of the write in progress, for sk_io_remove_inflight */
static char inflight[4096];
static volatile sig_atomic_t inflight_on;

void sk_io_remove_inflight(void)
{
    if (inflight_on) unlink(inflight);
}

void sk_io_fail_write_after(long bytes) { fail_write_after = bytes; }

static int write_all(int fd, const void *buf, size_t len, long *budget)
{
    const char *p = buf;
    while (len > 0) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        if (*budget >= 0 && (long)chunk > *budget) {
            /* simulated failure (tests): write what the budget allows, then fail */
            if (*budget > 0 && write(fd, p, (size_t)*budget) < 0) return -1;
            *budget = 0;
            errno = ENOSPC;
            return -1;
        }
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        if (*budget >= 0) *budget -= w;
    }
    return 0;
}

int sk_write_file_atomic(const char *path, const void *const *parts, const size_t *lens, int n_parts)
{
    size_t pl = strlen(path);
    char *tmp = sk_malloc(pl + 16);
    if (!tmp) return SK_ENOMEM;
    snprintf(tmp, pl + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = sk_error(SK_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        sk_free(tmp);
        return rc;
    }
    if (pl + 16 <= sizeof inflight) {
        memcpy(inflight, tmp, pl + 16);
        inflight_on = 1;
    }
    long budget = fail_write_after;
    fail_write_after = -1;
    mode_t um = umask(0);
    umask(um);
    int rc = SK_OK;
    if (fchmod(fd, 0666 & ~um) != 0) rc = sk_error(SK_EIO, "%s: cannot set permissions: %s", tmp, strerror(errno));
    for (int i = 0; i < n_parts && !rc; i++)
        if (write_all(fd, parts[i], lens[i], &budget) != 0)
            rc = sk_error(SK_EIO, "%s: write failed: %s (the existing file is untouched)", path, strerror(errno));
    if (!rc && fsync(fd) != 0) rc = sk_error(SK_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = sk_error(SK_EIO, "%s: close failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = sk_error(SK_EIO, "%s: cannot rename the temporary file into place: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    inflight_on = 0;
    if (!rc) {
        /* make the rename itself durable */
        char *dir = sk_strdup(path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            if (slash == dir)
                dir[1] = 0;
            else if (slash)
                *slash = 0;
            else
                strcpy(dir, ".");
            int dfd = open(dir, O_RDONLY);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            sk_free(dir);
        }
    }
    sk_free(tmp);
    return rc;
}

/* ---------------------------------------------------------------- dtypes */

struct dtype_info {
    const char *name;
    int size;
};
static const struct dtype_info dtypes[] = {
    { "F32", 4 }, { "F64", 8 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 },
    { "I32", 4 }, { "I16", 2 }, { "I8", 1 },  { "U8", 1 },   { "BOOL", 1 },
};
enum { DT_F32, DT_F64, DT_F16, DT_BF16, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_COUNT };

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 1024));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 1023) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static float convert_one(int dt, const unsigned char *p)
{
    uint64_t v;
    float f;
    double d;
    switch (dt) {
    case DT_F32: {
        uint32_t b = (uint32_t)rd_le(p, 4);
        memcpy(&f, &b, 4);
        return f;
    }
    case DT_F64:
        v = rd_le(p, 8);
        memcpy(&d, &v, 8);
        return (float)d;
    case DT_F16: return half_to_float((uint16_t)rd_le(p, 2));
    case DT_BF16: {
        uint32_t b = (uint32_t)rd_le(p, 2) << 16;
        memcpy(&f, &b, 4);
        return f;
    }
    case DT_I64: return (float)(int64_t)rd_le(p, 8);
    case DT_I32: return (float)(int32_t)rd_le(p, 4);
    case DT_I16: return (float)(int16_t)rd_le(p, 2);
    case DT_I8: return (float)(int8_t)p[0];
    default: return (float)p[0];
    }
}

/* ------------------------------------------------------------------ read */

struct st_entry {
    char *name;
    int dtype, ndim;
    int64_t shape[4];
    size_t begin, end, numel;
    float *data;
};

struct sk_safetensors {
    char *path;
    int n;
    struct st_entry *e;
    cJSON *meta;   /* __metadata__ (detached from the header), may be NULL */
};

void sk_safetensors_free(struct sk_safetensors *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        sk_free(f->e[i].name);
        sk_free(f->e[i].data);
    }
    sk_free(f->e);
    cJSON_Delete(f->meta);
    sk_free(f->path);
    sk_free(f);
}

static int cmp_begin(const void *a, const void *b)
{
    const struct st_entry *x = *(const struct st_entry *const *)a, *y = *(const struct st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return sk_error(SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return sk_error(SK_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *b = sk_malloc(n ? n : 1);
    if (!b) {
        fclose(fp);
        return SK_ENOMEM;
    }
    if (n && fread(b, 1, n, fp) != n) {
        fclose(fp);
        sk_free(b);
        return sk_error(SK_EIO, "%s: read failed", path);
    }
    fclose(fp);
    *buf = b;
    *len = n;
    return SK_OK;
}

static bool json_uint(const cJSON *j, uint64_t max, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0) || v > (double)max || v != floor(v)) return false;
    *out = (uint64_t)v;
    return true;
}

struct sk_safetensors *sk_safetensors_read(const char *path)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len)) return NULL;
    struct sk_safetensors *f = sk_calloc(1, sizeof *f);
    cJSON *root = NULL;
    struct st_entry **order = NULL;
    int rc = SK_ENOMEM;
    if (!f || !(f->path = sk_strdup(path))) goto fail;
    rc = SK_EFORMAT;
    if (len < 8) {
        sk_error(SK_EFORMAT, "%s: file is %zu bytes, too short for a safetensors header (8-byte length + JSON)", path, len);
        goto fail;
    }
    uint64_t hlen = rd_le(buf, 8);
    if (hlen < 2 || hlen > len - 8 || hlen > MAX_HEADER_BYTES) {
        sk_error(SK_EFORMAT,
                 "%s: offset 0: header length %llu does not fit the file (%zu bytes; a header is 2..%u bytes and "
                 "must end inside the file) — not a safetensors file, or truncated",
                 path, (unsigned long long)hlen, len, MAX_HEADER_BYTES);
        goto fail;
    }
    if (buf[8] != '{') {
        sk_error(SK_EFORMAT, "%s: offset 8: the header does not start with '{' (byte 0x%02x)", path, buf[8]);
        goto fail;
    }
    const char *endp = NULL;
    root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hlen, &endp, false);
    if (!root || !cJSON_IsObject(root)) {
        long at = endp ? (long)(endp - (const char *)buf) : 8;
        if (!root && cJSON_GetErrorPtr()) at = (long)(cJSON_GetErrorPtr() - (const char *)buf);
        sk_error(SK_EFORMAT, "%s: offset %ld: the header is not a valid JSON object", path, at);
        goto fail;
    }
    for (const unsigned char *p = (const unsigned char *)endp; p && p < buf + 8 + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != 0) {
            sk_error(SK_EFORMAT, "%s: offset %ld: unexpected bytes after the JSON header", path, (long)(p - buf));
            goto fail;
        }
    size_t data_off = 8 + (size_t)hlen, data_len = len - data_off;
    int cap = cJSON_GetArraySize(root);
    f->e = sk_calloc((size_t)(cap ? cap : 1), sizeof *f->e);
    order = sk_calloc((size_t)(cap ? cap : 1), sizeof *order);
    if (!f->e || !order) {
        rc = SK_ENOMEM;
        goto fail;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                sk_error(SK_EFORMAT, "%s: __metadata__ is not an object", path);
                goto fail;
            }
            for (cJSON *m = it->child; m; m = m->next)
                if (!cJSON_IsString(m)) {
                    sk_error(SK_EFORMAT, "%s: __metadata__ value '%s' is not a string", path, m->string);
                    goto fail;
                }
            continue;
        }
        for (int i = 0; i < f->n; i++)
            if (!strcmp(f->e[i].name, name)) {
                sk_error(SK_EFORMAT, "%s: tensor '%s' appears twice in the header", path, name);
                goto fail;
            }
        struct st_entry *e = &f->e[f->n];
        if (!(e->name = sk_strdup(name))) {
            rc = SK_ENOMEM;
            goto fail;
        }
        f->n++;
        if (!cJSON_IsObject(it)) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': header entry is not an object", path, name);
            goto fail;
        }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of)) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': needs string 'dtype', array 'shape' and array 'data_offsets'", path,
                     name);
            goto fail;
        }
        e->dtype = -1;
        for (int k = 0; k < DT_COUNT; k++)
            if (!strcmp(dt->valuestring, dtypes[k].name)) e->dtype = k;
        if (e->dtype < 0) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': dtype '%.20s' is not supported (F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
                     path, name, dt->valuestring);
            goto fail;
        }
        e->ndim = cJSON_GetArraySize(sh);
        if (e->ndim > 4) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': %d dimensions (skeptic handles at most 4)", path, name, e->ndim);
            goto fail;
        }
        e->numel = 1;
        int d = 0;
        for (cJSON *s = sh->child; s; s = s->next, d++) {
            uint64_t v;
            if (!json_uint(s, (uint64_t)1 << 40, &v)) {
                sk_error(SK_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
                goto fail;
            }
            e->shape[d] = (int64_t)v;
            if (v && e->numel > ((size_t)1 << 40) / v) {
                sk_error(SK_EFORMAT, "%s: tensor '%s': shape is implausibly large", path, name);
                goto fail;
            }
            e->numel *= (size_t)v;
        }
        uint64_t b, en;
        if (cJSON_GetArraySize(of) != 2 || !json_uint(of->child, (uint64_t)1 << 50, &b) ||
            !json_uint(of->child->next, (uint64_t)1 << 50, &en) || b > en) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", path, name);
            goto fail;
        }
        if (en > data_len) {
            sk_error(SK_EFORMAT,
                     "%s: tensor '%s': data_offsets [%llu, %llu] end outside the data area (%zu bytes) — truncated file?",
                     path, name, (unsigned long long)b, (unsigned long long)en, data_len);
            goto fail;
        }
        if (en - b != e->numel * (size_t)dtypes[e->dtype].size) {
            sk_error(SK_EFORMAT, "%s: tensor '%s': data_offsets span %llu bytes but shape and dtype %s need %zu", path,
                     name, (unsigned long long)(en - b), dtypes[e->dtype].name, e->numel * (size_t)dtypes[e->dtype].size);
            goto fail;
        }
        e->begin = (size_t)b;
        e->end = (size_t)en;
        order[f->n - 1] = e;
    }
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin);
    for (int i = 1; i < f->n; i++)
        if (order[i]->begin < order[i - 1]->end) {
            sk_error(SK_EFORMAT, "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data area", path,
                     order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end, order[i]->name, order[i]->begin,
                     order[i]->end);
            goto fail;
        }
    for (int i = 0; i < f->n; i++) {
        struct st_entry *e = &f->e[i];
        if (!(e->data = sk_malloc(sizeof(float) * (e->numel ? e->numel : 1)))) {
            rc = SK_ENOMEM;
            goto fail;
        }
        const unsigned char *src = buf + data_off + e->begin;
        int sz = dtypes[e->dtype].size;
        for (size_t k = 0; k < e->numel; k++) e->data[k] = convert_one(e->dtype, src + k * (size_t)sz);
    }
    f->meta = cJSON_DetachItemFromObjectCaseSensitive(root, "__metadata__");
    cJSON_Delete(root);
    sk_free(order);
    sk_free(buf);
    return f;
fail:
    (void)rc;
    cJSON_Delete(root);
    sk_free(order);
    sk_free(buf);
    sk_safetensors_free(f);
    return NULL;
}

int sk_safetensors_count(const struct sk_safetensors *f) { return f->n; }

const char *sk_safetensors_name(const struct sk_safetensors *f, int i)
{
    return i >= 0 && i < f->n ? f->e[i].name : NULL;
}

static const struct st_entry *find_entry(const struct sk_safetensors *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) return &f->e[i];
    return NULL;
}

const float *sk_safetensors_get(const struct sk_safetensors *f, const char *name, int *ndim, int64_t *shape)
{
    const struct st_entry *e = find_entry(f, name);
    if (!e) return NULL;
    if (ndim) *ndim = e->ndim;
    if (shape)
        for (int d = 0; d < e->ndim; d++) shape[d] = e->shape[d];
    return e->data;
}

const char *sk_safetensors_meta(const struct sk_safetensors *f, const char *key)
{
    if (!f->meta) return NULL;
    cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ----------------------------------------------------------------- write */

/* Parse metadata_json into an object of strings (numbers and other values
 * are turned into their JSON text). */
static int meta_object(const char *metadata_json, cJSON **out)
{
    cJSON *o = metadata_json ? cJSON_Parse(metadata_json) : cJSON_CreateObject();
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return sk_error(SK_EINVAL, "metadata is not a JSON object: %.80s", metadata_json ? metadata_json : "");
    }
    cJSON *n = cJSON_CreateObject();
    if (!n) {
        cJSON_Delete(o);
        return SK_ENOMEM;
    }
    for (cJSON *it = o->child; it; it = it->next) {
        char *txt = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
        cJSON_DeleteItemFromObjectCaseSensitive(n, it->string); /* the last of duplicate keys wins */
        cJSON_AddStringToObject(n, it->string, txt ? txt : cJSON_IsString(it) ? it->valuestring : "");
        free(txt);
    }
    cJSON_Delete(o);
    o = n;
    *out = o;
    return SK_OK;
}

static void set_string(cJSON *o, const char *key, const char *val)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    cJSON_AddStringToObject(o, key, val);
}

static int write_st(const char *path, const struct sk_st_tensor *const *ts, int n, cJSON *meta)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return SK_ENOMEM;
    if (meta) cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t off = 0;
    int rc = SK_OK;
    for (int i = 0; i < n && !rc; i++) {
        const struct sk_st_tensor *t = ts[i];
        if (t->ndim < 0 || t->ndim > 4 || !t->name || !t->name[0] || !strcmp(t->name, "__metadata__")) {
            rc = sk_error(SK_EINVAL, "%s: tensor %d has a bad name or %d dimensions", path, i, t->ndim);
            break;
        }
        if (cJSON_GetObjectItemCaseSensitive(root, t->name)) {
            rc = sk_error(SK_EINVAL, "%s: tensor name '%s' used twice", path, t->name);
            break;
        }
        size_t numel = 1;
        double shp[4];
        for (int d = 0; d < t->ndim; d++) {
            numel *= (size_t)t->shape[d];
            shp[d] = (double)t->shape[d];
        }
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON_AddItemToObject(e, "shape", cJSON_CreateDoubleArray(shp, t->ndim));
        double offs[2] = { (double)off, (double)(off + 4 * numel) };
        cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
        off += 4 * numel;
    }
    char *hdr = rc ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (rc) return rc;
    if (!hdr) return sk_error(SK_ENOMEM, "%s: cannot print the header", path);
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    int n_parts = n + 2;
    const void **parts = sk_malloc(sizeof *parts * (size_t)n_parts);
    size_t *lens = sk_malloc(sizeof *lens * (size_t)n_parts);
    unsigned char *head = sk_malloc(8 + padded);
    if (!parts || !lens || !head) {
        rc = SK_ENOMEM;
    } else {
        for (int b = 0; b < 8; b++) head[b] = (unsigned char)((uint64_t)padded >> (8 * b));
        memcpy(head + 8, hdr, hl);
        memset(head + 8 + hl, ' ', padded - hl);
        parts[0] = head;
        lens[0] = 8 + padded;
        /* float32 data written as is: the host is little-endian (x86-64, arm64) */
        for (int i = 0; i < n; i++) {
            size_t numel = 1;
            for (int d = 0; d < ts[i]->ndim; d++) numel *= (size_t)ts[i]->shape[d];
            parts[1 + i] = ts[i]->data;
            lens[1 + i] = 4 * numel;
        }
        parts[n + 1] = "";
        lens[n + 1] = 0;
        rc = sk_write_file_atomic(path, parts, lens, n_parts);
    }
    free(hdr);
    sk_free(parts);
    sk_free(lens);
    sk_free(head);
    return rc;
}

int sk_safetensors_write(const char *path, const struct sk_st_tensor *tensors, int n, const char *metadata_json)
{
    cJSON *meta = NULL;
    int rc = meta_object(metadata_json, &meta);
    if (rc) return rc;
    const struct sk_st_tensor **ts = sk_malloc(sizeof *ts * (size_t)(n ? n : 1));
    if (!ts) {
        cJSON_Delete(meta);
        return SK_ENOMEM;
    }
    for (int i = 0; i < n; i++) ts[i] = &tensors[i];
    rc = write_st(path, ts, n, meta);
    sk_free(ts);
    return rc;
}

/* ----------------------------------------------------------------- models */

/* The model's record (preprocessing, classes, split) into meta, replacing
 * whatever the caller's metadata said: the model is the authority. */
static int write_record(const struct sk_model *m, cJSON *meta)
{
    if (m->prep) {
        char *pj = sk_preprocess_to_json(m->prep);
        if (!pj) return SK_ENOMEM;
        set_string(meta, "skeptic.preprocess", pj);
        sk_free(pj);
    } else {
        set_string(meta, "skeptic.preprocess", "{\"kind\":\"none\"}");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "skeptic.input_range");
    if (m->in_lo) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddItemToObject(r, "lo", cJSON_CreateFloatArray(m->in_lo, m->in_dim));
        cJSON_AddItemToObject(r, "hi", cJSON_CreateFloatArray(m->in_hi, m->in_dim));
        char *t = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        if (!t) return SK_ENOMEM;
        set_string(meta, "skeptic.input_range", t);
        free(t);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "skeptic.classes");
    if (m->data.classes[0]) set_string(meta, "skeptic.classes", m->data.classes);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "skeptic.data_seed");
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "skeptic.test_fraction");
    if (m->data.has_split) {
        char b[40];
        snprintf(b, sizeof b, "%llu", (unsigned long long)m->data.data_seed);
        set_string(meta, "skeptic.data_seed", b);
        snprintf(b, sizeof b, "%.9g", m->data.test_fraction);
        set_string(meta, "skeptic.test_fraction", b);
    }
    return SK_OK;
}

int sk_model_read_record(struct sk_model *m, const struct sk_safetensors *f)
{
    const char *pj = sk_safetensors_meta(f, "skeptic.preprocess");
    if (pj) {
        struct sk_preprocess *p = sk_preprocess_from_json(pj);
        if (!p) return sk_error(SK_EFORMAT, "%s: __metadata__ \"skeptic.preprocess\": %s", f->path, sk_last_error());
        int rc = p->kind != SK_PREP_NONE && p->dim != m->in_dim
                     ? sk_error(SK_EFORMAT, "%s: the preprocessing record has %d features, model '%s' takes %d", f->path,
                                p->dim, m->spec, m->in_dim)
                     : sk_model_set_preprocess(m, p);
        sk_preprocess_free(p);
        if (rc) {
            if (rc != SK_EFORMAT) sk_error(SK_EFORMAT, "%s: preprocessing record: %s", f->path, sk_last_error());
            return SK_EFORMAT;
        }
    }
    const char *rj = sk_safetensors_meta(f, "skeptic.input_range");
    if (rj) {
        cJSON *r = cJSON_Parse(rj);
        cJSON *lo = r ? cJSON_GetObjectItemCaseSensitive(r, "lo") : NULL, *hi = r ? cJSON_GetObjectItemCaseSensitive(r, "hi") : NULL;
        int D = m->in_dim;
        bool ok = cJSON_IsArray(lo) && cJSON_IsArray(hi) && cJSON_GetArraySize(lo) == D && cJSON_GetArraySize(hi) == D;
        float *a = ok ? sk_malloc(sizeof(float) * (size_t)D) : NULL, *b = ok ? sk_malloc(sizeof(float) * (size_t)D) : NULL;
        ok = ok && a && b;
        int j = 0;
        for (cJSON *p = ok ? lo->child : NULL, *q = ok ? hi->child : NULL; ok && p && q; p = p->next, q = q->next, j++) {
            ok = cJSON_IsNumber(p) && cJSON_IsNumber(q) && isfinite(p->valuedouble) && isfinite(q->valuedouble) &&
                 p->valuedouble <= q->valuedouble;
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
                            "\"hi\":[%d numbers]} with lo <= hi", f->path, D, D);
        }
        sk_free(m->in_lo);
        sk_free(m->in_hi);
        m->in_lo = a;
        m->in_hi = b;
    }
    const char *cl = sk_safetensors_meta(f, "skeptic.classes");
    if (cl) {
        if (strlen(cl) >= sizeof m->data.classes || strspn(cl, "0123456789,") != strlen(cl))
            return sk_error(SK_EFORMAT, "%s: __metadata__ \"skeptic.classes\" is not a list like 6,0", f->path);
        snprintf(m->data.classes, sizeof m->data.classes, "%s", cl);
    }
    const char *ds = sk_safetensors_meta(f, "skeptic.data_seed"), *tf = sk_safetensors_meta(f, "skeptic.test_fraction");
    if (ds || tf) {
        char *e1 = NULL, *e2 = NULL;
        unsigned long long seed = ds ? strtoull(ds, &e1, 10) : 1;
        double frac = tf ? strtod(tf, &e2) : 0.2;
        if ((ds && (e1 == ds || *e1)) || (tf && (e2 == tf || *e2)) || !(frac > 0 && frac < 1))
            return sk_error(SK_EFORMAT, "%s: __metadata__ data split (skeptic.data_seed '%s', skeptic.test_fraction "
                            "'%s') is not a seed and a fraction in (0,1)", f->path, ds ? ds : "", tf ? tf : "");
        m->data.has_split = true;
        m->data.data_seed = seed ? seed : 1;
        m->data.test_fraction = (float)frac;
    }
    return SK_OK;
}

int sk_model_save_ex(const struct sk_model *m, const char *path, const char *metadata_json,
                     const struct sk_st_tensor *extra, int n_extra)
{
    cJSON *meta = NULL;
    int rc = meta_object(metadata_json, &meta);
    if (rc) return rc;
    set_string(meta, "format", "pt");
    set_string(meta, "skeptic.spec", m->spec);
    if ((rc = write_record(m, meta))) {
        cJSON_Delete(meta);
        return rc;
    }
    int n = m->n_tensors + n_extra;
    struct sk_st_tensor *mt = sk_calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *mt);
    const struct sk_st_tensor **ts = sk_malloc(sizeof *ts * (size_t)(n ? n : 1));
    if (!mt || !ts) {
        cJSON_Delete(meta);
        sk_free(mt);
        sk_free(ts);
        return SK_ENOMEM;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const struct sk_tensor_info *ti = &m->tensors[i];
        mt[i].name = ti->name;
        mt[i].ndim = ti->ndim;
        for (int d = 0; d < ti->ndim; d++) mt[i].shape[d] = ti->shape[d];
        mt[i].data = sk_model_tensor_data(m, ti);
        ts[i] = &mt[i];
    }
    for (int i = 0; i < n_extra; i++) ts[m->n_tensors + i] = &extra[i];
    rc = write_st(path, ts, n, meta);
    sk_free(mt);
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

/* Copy every tensor of m's spec from f into m, checking presence, shape and
 * finiteness; tensors not in the spec are an error except PyTorch's
 * "*.num_batches_tracked" and skeptic's own "skeptic.*" extras. */
static int fill_model(struct sk_model *m, const struct sk_safetensors *f)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const struct sk_tensor_info *ti = &m->tensors[i];
        const struct st_entry *e = find_entry(f, ti->name);
        if (!e)
            return sk_error(SK_EFORMAT, "%s: tensor '%s' required by spec '%s' is missing", f->path, ti->name, m->spec);
        int64_t want[4];
        bool same = e->ndim == ti->ndim;
        for (int d = 0; d < ti->ndim; d++) {
            want[d] = ti->shape[d];
            same = same && e->shape[d] == want[d];
        }
        if (!same) {
            char a[96], b[96];
            shape_str(a, sizeof a, e->ndim, e->shape);
            shape_str(b, sizeof b, ti->ndim, want);
            return sk_error(SK_EFORMAT, "%s: tensor '%s' has shape %s but spec '%s' needs %s", f->path, ti->name, a,
                            m->spec, b);
        }
        for (size_t k = 0; k < e->numel; k++)
            if (!isfinite(e->data[k]))
                return sk_error(SK_ENONFINITE, "%s: tensor '%s' element %zu is %g", f->path, ti->name, k, e->data[k]);
        memcpy(sk_model_tensor_data(m, ti), e->data, sizeof(float) * e->numel);
    }
    for (int i = 0; i < f->n; i++) {
        const char *nm = f->e[i].name;
        size_t l = strlen(nm), s = strlen(".num_batches_tracked");
        if (!strncmp(nm, "skeptic.", 8) || (l > s && !strcmp(nm + l - s, ".num_batches_tracked"))) continue;
        if (!sk_model_tensor(m, nm))
            return sk_error(SK_EFORMAT, "%s: tensor '%s' is not part of spec '%s' (wrong --arch?)", f->path, nm,
                            m->spec);
    }
    return SK_OK;
}

static char *meta_dump(const struct sk_safetensors *f)
{
    char *txt = f->meta ? cJSON_PrintUnformatted(f->meta) : NULL;
    char *out = sk_strdup(txt ? txt : "{}");
    free(txt);
    return out;
}

char *sk_safetensors_meta_json(const struct sk_safetensors *f) { return meta_dump(f); }

struct sk_model *sk_model_load(const char *path, const char *spec, char **metadata_json_out)
{
    if (metadata_json_out) *metadata_json_out = NULL;
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
    struct sk_model *m = sk_model_from_spec(spec);
    if (!m) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s: %s", path, sk_last_error());
        sk_error(SK_EFORMAT, "%s", msg);
        sk_safetensors_free(f);
        return NULL;
    }
    if (fill_model(m, f) || sk_model_read_record(m, f)) {
        sk_model_free(m);
        sk_safetensors_free(f);
        return NULL;
    }
    if (metadata_json_out && !(*metadata_json_out = meta_dump(f))) {
        sk_model_free(m);
        m = NULL;
    }
    sk_safetensors_free(f);
    return m;
}

const char *sk_meta_get(const char *metadata_json, const char *key, char *buf, size_t cap)
{
    if (!metadata_json || !cap) return NULL;
    cJSON *o = cJSON_Parse(metadata_json);
    cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    const char *r = NULL;
    if (cJSON_IsString(v)) {
        snprintf(buf, cap, "%s", v->valuestring);
        r = buf;
    }
    cJSON_Delete(o);
    return r;
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

/* ------------------------------------------------------------ checkpoints */

static void add_num(cJSON *o, const char *key, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    cJSON_AddStringToObject(o, key, b);
}

int sk_checkpoint_save(const char *path, const struct sk_trainer *t, const char *metadata_json)
{
    const struct sk_model *m = t->model;
    const struct sk_train_state *s = &t->st;
    cJSON *meta = NULL;
    int rc = meta_object(metadata_json, &meta);
    if (rc) return rc;
    cJSON *st = cJSON_CreateObject();
    add_num(st, "epoch", s->epoch);
    add_num(st, "batch", s->batch);
    add_num(st, "step", (double)s->step);
    add_num(st, "ep_loss_sum", s->ep_loss_sum);
    add_num(st, "ep_correct", (double)s->ep_correct);
    add_num(st, "ep_seen", (double)s->ep_seen);
    add_num(st, "ep_seconds", s->ep_seconds);
    add_num(st, "best_val", s->best_val);
    add_num(st, "best_epoch", s->best_epoch);
    add_num(st, "bad_epochs", s->bad_epochs);
    add_num(st, "done", s->done);
    add_num(st, "optim_t", (double)t->opt->t);
    add_num(st, "seed", (double)t->cfg.seed);
    add_num(st, "batch_size", t->cfg.batch);
    add_num(st, "n_train", t->n_train);
    add_num(st, "n_val", t->n_val);
    cJSON_AddStringToObject(st, "optimizer", sk_optim_kind_name(t->opt->cfg.kind));
    char *txt = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)t->cfg.seed);
    set_string(meta, "skeptic.state", txt ? txt : "{}");
    set_string(meta, "skeptic.seed", seedbuf);
    free(txt);
    char *mj = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    if (!mj) return SK_ENOMEM;
    struct sk_st_tensor ex[4] = {
        { "skeptic.optim.m", 1, { (int64_t)m->n_params }, t->opt->m },
        { "skeptic.optim.v", 1, { (int64_t)m->n_params }, t->opt->v },
        { "skeptic.best.params", 1, { (int64_t)m->n_params }, t->best_params },
        { "skeptic.best.buffers", 1, { (int64_t)m->n_buffers }, t->best_buffers },
    };
    rc = sk_model_save_ex(m, path, mj, ex, 4);
    free(mj);
    return rc;
}

static int state_num(const char *path, cJSON *st, const char *key, double *out)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(st, key);
    char *end = NULL;
    if (!cJSON_IsString(v) || (*out = strtod(v->valuestring, &end), end == v->valuestring || *end))
        return sk_error(SK_EFORMAT, "%s: checkpoint state lacks a number '%s'", path, key);
    return SK_OK;
}

int sk_checkpoint_load(const char *path, struct sk_trainer *t, char **metadata_json_out)
{
    if (metadata_json_out) *metadata_json_out = NULL;
    struct sk_model *m = t->model;
    struct sk_safetensors *f = sk_safetensors_read(path);
    if (!f) return sk_last_error()[0] ? SK_EFORMAT : SK_EIO;
    int rc = SK_OK;
    cJSON *st = NULL;
    const char *spec = sk_safetensors_meta(f, "skeptic.spec"), *sts = sk_safetensors_meta(f, "skeptic.state");
    if (!spec || strcmp(spec, m->spec)) {
        rc = sk_error(SK_EFORMAT, "%s: checkpoint is of model '%s', this run trains '%s'", path, spec ? spec : "?",
                      m->spec);
        goto out;
    }
    if (!sts || !(st = cJSON_Parse(sts))) {
        rc = sk_error(SK_EFORMAT, "%s: not a checkpoint (no valid __metadata__ \"skeptic.state\")", path);
        goto out;
    }
    double v[16];
    static const char *keys[] = { "epoch",    "batch",      "step",       "ep_loss_sum", "ep_correct", "ep_seen",
                                  "ep_seconds", "best_val", "best_epoch", "bad_epochs",  "done",       "optim_t",
                                  "batch_size", "n_train",  "n_val" };
    for (int i = 0; i < 15; i++)
        if ((rc = state_num(path, st, keys[i], &v[i]))) goto out;
    cJSON *ok = cJSON_GetObjectItemCaseSensitive(st, "optimizer");
    const char *seed_s = sk_safetensors_meta(f, "skeptic.seed");
    unsigned long long seed = seed_s ? strtoull(seed_s, NULL, 10) : 0;
    if (seed != t->cfg.seed || (int)v[12] != t->cfg.batch || (int)v[13] != t->n_train || (int)v[14] != t->n_val ||
        !cJSON_IsString(ok) || strcmp(ok->valuestring, sk_optim_kind_name(t->opt->cfg.kind))) {
        rc = sk_error(SK_EINVAL,
                      "%s: checkpoint was written with seed %llu, batch %d, %d training + %d validation rows, "
                      "optimizer %s; this run has seed %llu, batch %d, %d + %d rows, optimizer %s — resume with the "
                      "same command line",
                      path, seed, (int)v[12], (int)v[13], (int)v[14], cJSON_IsString(ok) ? ok->valuestring : "?",
                      (unsigned long long)t->cfg.seed, t->cfg.batch, t->n_train, t->n_val,
                      sk_optim_kind_name(t->opt->cfg.kind));
        goto out;
    }
    if ((rc = fill_model(m, f))) goto out;
    struct {
        const char *name;
        float *dst;
        size_t n;
    } ex[4] = {
        { "skeptic.optim.m", t->opt->m, m->n_params },
        { "skeptic.optim.v", t->opt->v, m->n_params },
        { "skeptic.best.params", t->best_params, m->n_params },
        { "skeptic.best.buffers", t->best_buffers, m->n_buffers },
    };
    for (int i = 0; i < 4; i++) {
        int nd;
        int64_t shp[4];
        const float *d = sk_safetensors_get(f, ex[i].name, &nd, shp);
        if (!d || nd != 1 || (size_t)shp[0] != ex[i].n) {
            rc = sk_error(SK_EFORMAT, "%s: checkpoint tensor '%s' is missing or not of %zu values", path, ex[i].name,
                          ex[i].n);
            goto out;
        }
        memcpy(ex[i].dst, d, sizeof(float) * ex[i].n);
    }
    struct sk_train_state *s = &t->st;
    s->epoch = (int)v[0];
    s->batch = (int)v[1];
    s->step = (long)v[2];
    s->ep_loss_sum = v[3];
    s->ep_correct = (long)v[4];
    s->ep_seen = (long)v[5];
    s->ep_seconds = v[6];
    s->best_val = v[7];
    s->best_epoch = (int)v[8];
    s->bad_epochs = (int)v[9];
    s->done = v[10] != 0;
    t->opt->t = (long)v[11];
    if (metadata_json_out && !(*metadata_json_out = meta_dump(f))) rc = SK_ENOMEM;
out:
    cJSON_Delete(st);
    sk_safetensors_free(f);
    return rc;
}
