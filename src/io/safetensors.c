/* safetensors read/write, string metadata, atomic file writes.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data
 * area; every tensor's data_offsets are relative to the start of the data
 * area. The header is padded with spaces to a multiple of 8 bytes (as the
 * Hugging Face writer does) so that the data area stays 8-byte aligned. */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/io.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* Temporaries are named PATH.tmp-PID-XXXXXX. One whose process is gone (a
 * write killed by SIGKILL, which no handler sees) is removed by the next
 * write of the same PATH; so is an unattributed PATH.tmp-XXXXXX of older
 * versions once it is an hour old. */
static void remove_stale_temporaries(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash == dir) dir[1] = 0;
    else if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    size_t bl = strlen(base);
    DIR *dp = opendir(dir);
    if (!dp) return;
    struct dirent *e;
    while ((e = readdir(dp))) {
        const char *nm = e->d_name;
        if (strncmp(nm, base, bl) || strncmp(nm + bl, ".tmp-", 5)) continue;
        const char *rest = nm + bl + 5;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, nm);
        char *end = NULL;
        long pid = strtol(rest, &end, 10);
        if (end != rest && *end == '-' && strlen(end + 1) == 6) {
            if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH) unlink(full);
        } else if (strlen(rest) == 6) {
            struct stat st;
            if (!stat(full, &st) && time(NULL) - st.st_mtime > 3600) unlink(full);
        }
    }
    closedir(dp);
}

int sk_write_file_atomic(const char *path, const void *const *parts, const size_t *lens, int n_parts)
{
    size_t pl = strlen(path);
    char *tmp = sk_malloc(pl + 40);
    if (!tmp) return SK_ENOMEM;
    remove_stale_temporaries(path);
    snprintf(tmp, pl + 40, "%s.tmp-%ld-XXXXXX", path, (long)getpid());
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = sk_error(SK_EIO, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
        sk_free(tmp);
        return rc;
    }
    if (strlen(tmp) < sizeof inflight) {
        memcpy(inflight, tmp, strlen(tmp) + 1);
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
            rc = sk_error(SK_EIO, "%s: write failed: %s%s (the existing file is untouched)", path, strerror(errno),
                          errno == EFBIG ? ": over the file size limit (ulimit -f)" : "");
    if (!rc && fsync(fd) != 0) rc = sk_error(SK_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = sk_error(SK_EIO, "%s: close failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = sk_error(SK_EIO, "%s: cannot rename the temporary file into place: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    inflight_on = 0;
    if (!rc) {
        /* make the rename itself durable; the temporary's buffer (longer than
         * path) holds the directory name: nothing may fail after the rename */
        char *dir = tmp;
        memcpy(dir, path, pl + 1);
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

/* The JSON header of the file's bytes: the length word, the opening brace,
 * the JSON object and the padding after it. *data_off: where the data area
 * starts. NULL + sk_last_error() naming the offset of the problem. */
static cJSON *parse_header(const char *path, const unsigned char *buf, size_t len, size_t *data_off)
{
    if (len < 8) {
        sk_error(SK_EFORMAT, "%s: file is %zu bytes, too short for a safetensors header (8-byte length + JSON)", path, len);
        return NULL;
    }
    uint64_t hlen = rd_le(buf, 8);
    if (hlen < 2 || hlen > len - 8 || hlen > MAX_HEADER_BYTES) {
        sk_error(SK_EFORMAT,
                 "%s: offset 0: header length %llu does not fit the file (%zu bytes; a header is 2..%u bytes and "
                 "must end inside the file) — not a safetensors file, or truncated",
                 path, (unsigned long long)hlen, len, MAX_HEADER_BYTES);
        return NULL;
    }
    if (buf[8] != '{') {
        sk_error(SK_EFORMAT, "%s: offset 8: the header does not start with '{' (byte 0x%02x)", path, buf[8]);
        return NULL;
    }
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hlen, &endp, false);
    if (!root || !cJSON_IsObject(root)) {
        long at = endp ? (long)(endp - (const char *)buf) : 8;
        if (!root && cJSON_GetErrorPtr()) at = (long)(cJSON_GetErrorPtr() - (const char *)buf);
        sk_error(SK_EFORMAT, "%s: offset %ld: the header is not a valid JSON object", path, at);
        cJSON_Delete(root);
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)endp; p && p < buf + 8 + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != 0) {
            sk_error(SK_EFORMAT, "%s: offset %ld: unexpected bytes after the JSON header", path, (long)(p - buf));
            cJSON_Delete(root);
            return NULL;
        }
    *data_off = 8 + (size_t)hlen;
    return root;
}

static int check_meta(const char *path, const cJSON *meta)
{
    if (!cJSON_IsObject(meta)) return sk_error(SK_EFORMAT, "%s: __metadata__ is not an object", path);
    for (const cJSON *m = meta->child; m; m = m->next)
        if (!cJSON_IsString(m))
            return sk_error(SK_EFORMAT, "%s: __metadata__ value '%s' is not a string", path, m->string);
    return SK_OK;
}

/* Header entry `it` of tensor e (named already): dtype, shape and
 * data_offsets, which must lie inside the data area (data_len bytes) and
 * span exactly what shape and dtype need. */
static int parse_entry(const char *path, const cJSON *it, struct st_entry *e, size_t data_len)
{
    const char *name = e->name;
    if (!cJSON_IsObject(it)) return sk_error(SK_EFORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
    cJSON *of = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of))
        return sk_error(SK_EFORMAT, "%s: tensor '%s': needs string 'dtype', array 'shape' and array 'data_offsets'",
                        path, name);
    e->dtype = -1;
    for (int k = 0; k < DT_COUNT; k++)
        if (!strcmp(dt->valuestring, dtypes[k].name)) e->dtype = k;
    if (e->dtype < 0)
        return sk_error(SK_EFORMAT,
                        "%s: tensor '%s': dtype '%.20s' is not supported (F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL)",
                        path, name, dt->valuestring);
    e->ndim = cJSON_GetArraySize(sh);
    if (e->ndim > 4)
        return sk_error(SK_EFORMAT, "%s: tensor '%s': %d dimensions (skeptic handles at most 4)", path, name, e->ndim);
    e->numel = 1;
    int d = 0;
    for (cJSON *s = sh->child; s; s = s->next, d++) {
        uint64_t v;
        if (!json_uint(s, (uint64_t)1 << 40, &v))
            return sk_error(SK_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, d);
        e->shape[d] = (int64_t)v;
        if (v && e->numel > ((size_t)1 << 40) / v)
            return sk_error(SK_EFORMAT, "%s: tensor '%s': shape is implausibly large", path, name);
        e->numel *= (size_t)v;
    }
    uint64_t b, en;
    if (cJSON_GetArraySize(of) != 2 || !json_uint(of->child, (uint64_t)1 << 50, &b) ||
        !json_uint(of->child->next, (uint64_t)1 << 50, &en) || b > en)
        return sk_error(SK_EFORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end", path,
                        name);
    if (en > data_len)
        return sk_error(SK_EFORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] end outside the data area (%zu bytes) — truncated file?",
                        path, name, (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != e->numel * (size_t)dtypes[e->dtype].size)
        return sk_error(SK_EFORMAT, "%s: tensor '%s': data_offsets span %llu bytes but shape and dtype %s need %zu", path,
                        name, (unsigned long long)(en - b), dtypes[e->dtype].name,
                        e->numel * (size_t)dtypes[e->dtype].size);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return SK_OK;
}

/* order: the n tensors sorted by where their data begin. */
static int check_overlaps(const char *path, struct st_entry *const *order, int n)
{
    for (int i = 1; i < n; i++)
        if (order[i]->begin < order[i - 1]->end)
            return sk_error(SK_EFORMAT, "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data area", path,
                            order[i - 1]->name, order[i - 1]->begin, order[i - 1]->end, order[i]->name,
                            order[i]->begin, order[i]->end);
    return SK_OK;
}

static const struct st_entry *find_entry(const struct sk_safetensors *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name)) return &f->e[i];
    return NULL;
}

struct sk_safetensors *sk_safetensors_read(const char *path)
{
    unsigned char *buf = NULL;
    size_t len = 0, data_off = 0;
    if (read_file(path, &buf, &len)) return NULL;
    struct sk_safetensors *f = sk_calloc(1, sizeof *f);
    cJSON *root = NULL;
    struct st_entry **order = NULL;
    if (!f || !(f->path = sk_strdup(path)) || !(root = parse_header(path, buf, len, &data_off))) goto fail;
    int cap = cJSON_GetArraySize(root);
    f->e = sk_calloc((size_t)(cap ? cap : 1), sizeof *f->e);
    order = sk_calloc((size_t)(cap ? cap : 1), sizeof *order);
    if (!f->e || !order) goto fail;
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) {
            if (check_meta(path, it)) goto fail;
            continue;
        }
        if (find_entry(f, name)) {
            sk_error(SK_EFORMAT, "%s: tensor '%s' appears twice in the header", path, name);
            goto fail;
        }
        struct st_entry *e = &f->e[f->n];
        if (!(e->name = sk_strdup(name))) goto fail;
        f->n++;
        if (parse_entry(path, it, e, len - data_off)) goto fail;
        order[f->n - 1] = e;
    }
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin);
    if (check_overlaps(path, order, f->n)) goto fail;
    for (int i = 0; i < f->n; i++) {
        struct st_entry *e = &f->e[i];
        if (!(e->data = sk_malloc(sizeof(float) * (e->numel ? e->numel : 1)))) goto fail;
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
    cJSON_Delete(root);
    sk_free(order);
    sk_free(buf);
    sk_safetensors_free(f);
    return NULL;
}

int sk_safetensors_count(const struct sk_safetensors *f) { return f->n; }

size_t sk_safetensors_total_numel(const struct sk_safetensors *f)
{
    size_t t = 0;
    for (int i = 0; i < f->n; i++) t += f->e[i].numel;
    return t;
}

const char *sk_safetensors_path(const struct sk_safetensors *f) { return f->path; }

const char *sk_safetensors_name(const struct sk_safetensors *f, int i)
{
    return i >= 0 && i < f->n ? f->e[i].name : NULL;
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

char *sk_safetensors_meta_json(const struct sk_safetensors *f)
{
    char *txt = f->meta ? cJSON_PrintUnformatted(f->meta) : NULL;
    char *out = sk_strdup(txt ? txt : "{}");
    free(txt);
    return out;
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

struct sk_meta {
    cJSON *o; /* an object whose values are all strings */
};

int sk_meta_parse(const char *metadata_json, struct sk_meta **out)
{
    *out = NULL;
    struct sk_meta *m = sk_calloc(1, sizeof *m);
    if (!m) return SK_ENOMEM;
    int rc = meta_object(metadata_json, &m->o);
    if (rc) {
        sk_free(m);
        return rc;
    }
    *out = m;
    return SK_OK;
}

void sk_meta_free(struct sk_meta *m)
{
    if (!m) return;
    cJSON_Delete(m->o);
    sk_free(m);
}

int sk_meta_set(struct sk_meta *m, const char *key, const char *value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(m->o, key);
    if (value && !cJSON_AddStringToObject(m->o, key, value)) return SK_ENOMEM;
    return SK_OK;
}

char *sk_meta_print(const struct sk_meta *m)
{
    char *txt = cJSON_PrintUnformatted(m->o);
    char *out = txt ? sk_strdup(txt) : NULL;
    free(txt);
    return out;
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

static int write_st(const char *path, const struct sk_st_tensor *ts, int n, cJSON *meta)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        cJSON_Delete(meta);
        return SK_ENOMEM;
    }
    if (meta) cJSON_AddItemToObject(root, "__metadata__", meta);
    size_t off = 0;
    int rc = SK_OK;
    for (int i = 0; i < n && !rc; i++) {
        const struct sk_st_tensor *t = &ts[i];
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
            for (int d = 0; d < ts[i].ndim; d++) numel *= (size_t)ts[i].shape[d];
            parts[1 + i] = ts[i].data;
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
    return write_st(path, tensors, n, meta);
}
