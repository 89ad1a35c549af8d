/* Dataset allocation, IDX loading (zlib reads plain and gzip alike), synthetic sets. */
#include "skeptic/data.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct sk_dataset *sk_dataset_new(int n, int c, int h, int w, int n_classes)
{
    if (n < 0 || c < 1 || h < 1 || w < 1) {
        sk_error(SK_EINVAL, "dataset shape %d x %dx%dx%d is invalid", n, c, h, w);
        return NULL;
    }
    struct sk_dataset *d = sk_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->dim = c * h * w;
    d->n_classes = n_classes;
    d->x = sk_calloc((size_t)(n ? n : 1) * d->dim, sizeof(float));
    d->y = sk_calloc((size_t)(n ? n : 1), sizeof(int));
    if (!d->x || !d->y) {
        sk_dataset_free(d);
        return NULL;
    }
    return d;
}

void sk_dataset_free(struct sk_dataset *d)
{
    if (!d) return;
    sk_free(d->x);
    sk_free(d->y);
    sk_free(d);
}

struct sk_dataset *sk_dataset_subset(const struct sk_dataset *d, const int *idx, int k)
{
    struct sk_dataset *s = sk_dataset_new(k, d->c, d->h, d->w, d->n_classes);
    if (!s) return NULL;
    memcpy(s->name, d->name, sizeof s->name);
    for (int i = 0; i < k; i++) {
        memcpy(s->x + (size_t)i * d->dim, d->x + (size_t)idx[i] * d->dim, sizeof(float) * d->dim);
        s->y[i] = d->y[idx[i]];
    }
    return s;
}

/* Read a whole (possibly gzip-compressed) file. */
static unsigned char *read_all(const char *path, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        sk_error(SK_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = sk_malloc(cap);
    while (buf) {
        if (n == cap && cap >= ((size_t)1 << 33)) {
            /* 8 GiB decompressed: far beyond any IDX set, likely a compression bomb */
            sk_error(SK_EFORMAT, "%s: decompresses to more than 8 GiB; refusing to read further", path);
            sk_free(buf);
            buf = NULL;
            break;
        }
        if (n == cap) {
            unsigned char *nb = sk_malloc(cap * 2);
            if (!nb) {
                sk_free(buf);
                buf = NULL;
                break;
            }
            memcpy(nb, buf, n);
            sk_free(buf);
            buf = nb;
            cap *= 2;
        }
        int got = gzread(f, buf + n, (unsigned)(cap - n > (1u << 30) ? (1u << 30) : cap - n));
        if (got < 0) {
            int e;
            const char *msg = gzerror(f, &e);
            sk_error(SK_EFORMAT, "%s: corrupt compressed data near byte %zu: %s", path, n, msg);
            sk_free(buf);
            buf = NULL;
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(f);
    *len = n;
    return buf;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* Parse an IDX header: returns the data offset or -1. dims[] filled. */
static long idx_header(const char *path, const unsigned char *b, size_t len, int want_ndim, uint32_t *dims)
{
    if (len < 4) {
        sk_error(SK_EFORMAT, "%s: file is %zu bytes, too short for an IDX header", path, len);
        return -1;
    }
    if (b[0] != 0 || b[1] != 0) {
        sk_error(SK_EFORMAT, "%s: offset 0: bad magic %02x %02x (an IDX file starts with two zero bytes)", path, b[0], b[1]);
        return -1;
    }
    if (b[2] != 0x08) {
        sk_error(SK_EFORMAT, "%s: offset 2: element type 0x%02x is not unsigned byte (0x08)", path, b[2]);
        return -1;
    }
    if (b[3] != want_ndim) {
        sk_error(SK_EFORMAT, "%s: offset 3: %d dimensions, expected %d", path, b[3], want_ndim);
        return -1;
    }
    size_t off = 4 + 4 * (size_t)want_ndim;
    if (len < off) {
        sk_error(SK_EFORMAT, "%s: truncated header (%zu bytes, need %zu)", path, len, off);
        return -1;
    }
    size_t total = 1;
    for (int i = 0; i < want_ndim; i++) {
        dims[i] = be32(b + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > (1u << 28)) {
            sk_error(SK_EFORMAT, "%s: offset %d: dimension %d is %u", path, 4 + 4 * i, i, dims[i]);
            return -1;
        }
        total *= dims[i];
        if (total > ((size_t)1 << 34)) {
            sk_error(SK_EFORMAT, "%s: dimensions give an implausible size", path);
            return -1;
        }
    }
    if (len != off + total) {
        sk_error(SK_EFORMAT, "%s: header promises %zu data bytes after offset %zu but the file has %zu (%s)", path,
                 total, off, len - off, len < off + total ? "truncated" : "trailing bytes");
        return -1;
    }
    return (long)off;
}

struct sk_dataset *sk_data_load_idx(const char *images_path, const char *labels_path)
{
    size_t li = 0, ll = 0;
    unsigned char *bi = read_all(images_path, &li);
    if (!bi) return NULL;
    unsigned char *bl = read_all(labels_path, &ll);
    if (!bl) {
        sk_free(bi);
        return NULL;
    }
    struct sk_dataset *d = NULL;
    uint32_t di[3], dl[1];
    long oi = idx_header(images_path, bi, li, 3, di);
    long ol = oi < 0 ? -1 : idx_header(labels_path, bl, ll, 1, dl);
    if (oi >= 0 && ol >= 0) {
        if (di[0] != dl[0]) {
            sk_error(SK_EFORMAT, "%s has %u images but %s has %u labels", images_path, di[0], labels_path, dl[0]);
        } else if ((d = sk_dataset_new((int)di[0], 1, (int)di[1], (int)di[2], 0))) {
            size_t dim = (size_t)di[1] * di[2];
            for (size_t i = 0; i < (size_t)di[0] * dim; i++) d->x[i] = bi[oi + (long)i] / 255.0f;
            int maxl = 0;
            for (uint32_t i = 0; i < dl[0]; i++) {
                d->y[i] = bl[ol + (long)i];
                if (d->y[i] > maxl) maxl = d->y[i];
            }
            d->n_classes = maxl + 1;
        }
    }
    sk_free(bi);
    sk_free(bl);
    return d;
}

struct sk_dataset *sk_data_fashion_mnist(const char *dir, const char *split)
{
    if (!dir) dir = getenv("SKEPTIC_FASHION_MNIST");
    if (!dir) dir = "/usr/share/datasets/fashion-mnist";
    const char *pre;
    if (!strcmp(split, "train"))
        pre = "train";
    else if (!strcmp(split, "test"))
        pre = "t10k";
    else {
        sk_error(SK_EINVAL, "fashion-mnist split '%s' is neither 'train' nor 'test'", split);
        return NULL;
    }
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, pre);
    snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, pre);
    struct sk_dataset *d = sk_data_load_idx(ip, lp);
    if (!d && strstr(sk_last_error(), "cannot open")) {
        char msg[1100];
        snprintf(msg, sizeof msg, "%s (install Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist)",
                 sk_last_error());
        sk_error(SK_EIO, "%s", msg);
    }
    if (d) {
        d->n_classes = 10;
        snprintf(d->name, sizeof d->name, "fashion-mnist-%s", split);
    }
    return d;
}

struct sk_dataset *sk_data_moons(int n, float noise, uint64_t seed)
{
    struct sk_dataset *d = sk_dataset_new(n, 2, 1, 1, 2);
    if (!d) return NULL;
    struct sk_rng r = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_DATA);
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < n; i++) {
        int c = i % 2;
        double t = pi * sk_rng_uniform_d(&r);
        double x0 = c == 0 ? cos(t) : 1.0 - cos(t), x1 = c == 0 ? sin(t) : 0.5 - sin(t);
        d->x[2 * i] = (float)(x0 + noise * sk_rng_normal(&r));
        d->x[2 * i + 1] = (float)(x1 + noise * sk_rng_normal(&r));
        d->y[i] = c;
    }
    snprintf(d->name, sizeof d->name, "moons");
    return d;
}

struct sk_dataset *sk_data_spirals(int n, int k, float noise, uint64_t seed)
{
    struct sk_dataset *d = sk_dataset_new(n, 2, 1, 1, k);
    if (!d) return NULL;
    struct sk_rng r = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_DATA);
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < n; i++) {
        int c = i % k;
        double t = sk_rng_uniform_d(&r);
        double ang = c * 2 * pi / k + t * 1.75 * pi, rad = 0.1 + t;
        d->x[2 * i] = (float)(rad * cos(ang) + noise * sk_rng_normal(&r));
        d->x[2 * i + 1] = (float)(rad * sin(ang) + noise * sk_rng_normal(&r));
        d->y[i] = c;
    }
    snprintf(d->name, sizeof d->name, "spirals");
    return d;
}

struct sk_dataset *sk_data_blobs(int n, int k, int dim, float spread, uint64_t seed)
{
    struct sk_dataset *d = sk_dataset_new(n, dim, 1, 1, k);
    if (!d) return NULL;
    struct sk_rng r = sk_rng_derive(sk_rng_new(seed).key, SK_STREAM_DATA);
    float *centres = sk_malloc(sizeof(float) * (size_t)k * dim);
    if (!centres) {
        sk_dataset_free(d);
        return NULL;
    }
    for (int i = 0; i < k * dim; i++) centres[i] = spread * sk_rng_normal(&r);
    for (int i = 0; i < n; i++) {
        int c = i % k;
        for (int j = 0; j < dim; j++) d->x[(size_t)i * dim + j] = centres[c * dim + j] + sk_rng_normal(&r);
        d->y[i] = c;
    }
    sk_free(centres);
    snprintf(d->name, sizeof d->name, "blobs");
    return d;
}
