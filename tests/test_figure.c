/* Figures: every kind of figure drawn to PNG and SVG. The PNG must decode
 * (libpng) at the expected size, hold several colours and the dark pixels of
 * its title and axis text; the SVG must be well-formed XML whose <title> and
 * <desc> carry the title, axis labels and captions. Also: the format follows
 * the extension, memory and file output agree, errors name what was wrong,
 * and figures rendered on several threads at once come out identical. */
#include "skeptic/attack.h"
#include "skeptic/data.h"
#include "skeptic/figure.h"
#include "skeptic/metrics.h"
#include "testutil.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

struct image {
    int w, h;
    unsigned char *px; /* RGB */
};

static struct image decode_png(const char *path)
{
    struct image im = { 0, 0, NULL };
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&pi, path)) return im;
    pi.format = PNG_FORMAT_RGB;
    im.px = malloc(PNG_IMAGE_SIZE(pi));
    if (im.px && png_image_finish_read(&pi, NULL, im.px, 0, NULL)) {
        im.w = (int)pi.width;
        im.h = (int)pi.height;
    } else {
        free(im.px);
        im.px = NULL;
        png_image_free(&pi);
    }
    return im;
}

/* Distinct colours (up to 64 counted) over the whole image. */
static int n_colours(const struct image *im)
{
    unsigned seen[64];
    int n = 0;
    for (long i = 0; i < (long)im->w * im->h && n < 64; i++) {
        const unsigned char *p = im->px + 3 * i;
        unsigned c = (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];
        int k = 0;
        while (k < n && seen[k] != c) k++;
        if (k == n) seen[n++] = c;
    }
    return n;
}

/* Dark (text-like) pixels in rows [y0, y1). */
static long dark_in_rows(const struct image *im, int y0, int y1)
{
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            const unsigned char *p = im->px + 3 * ((long)y * im->w + x);
            n += p[0] < 90 && p[1] < 90 && p[2] < 90;
        }
    return n;
}

/* Dark pixels in columns [x0, x1). */
static long dark_in_cols(const struct image *im, int x0, int x1)
{
    long n = 0;
    for (int y = 0; y < im->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < im->w; x++) {
            const unsigned char *p = im->px + 3 * ((long)y * im->w + x);
            n += p[0] < 90 && p[1] < 90 && p[2] < 90;
        }
    return n;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

/* Well-formed XML, as far as an SVG needs: one root element, every start tag
 * closed by its own end tag in order, attributes quoted, entities known,
 * comments, CDATA and processing instructions terminated. */
static bool xml_well_formed(const char *s)
{
    const char *stack[256];
    size_t stack_len[256];
    int depth = 0, roots = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            const char *e = strchr(p, ';');
            if (!e || e - p > 8) return false;
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) &&
                strncmp(p, "&apos;", 6) && p[1] != '#')
                return false;
            p = e + 1;
            continue;
        }
        if (*p != '<') {
            if (*p == '>' && depth == 0) return false;
            p++;
            continue;
        }
        if (!strncmp(p, "<?", 2)) {
            const char *e = strstr(p, "?>");
            if (!e) return false;
            p = e + 2;
        } else if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p + 4, "-->");
            if (!e) return false;
            p = e + 3;
        } else if (!strncmp(p, "<![CDATA[", 9)) {
            const char *e = strstr(p, "]]>");
            if (!e) return false;
            p = e + 3;
        } else if (p[1] == '/') {
            const char *n = p + 2;
            size_t len = strcspn(n, " \t\r\n>");
            if (depth == 0 || len != stack_len[depth - 1] || strncmp(n, stack[depth - 1], len)) return false;
            depth--;
            p = strchr(n, '>');
            if (!p) return false;
            p++;
        } else {
            const char *n = p + 1;
            size_t len = strcspn(n, " \t\r\n/>");
            if (len == 0) return false;
            const char *q = n + len;
            bool empty = false;
            for (;;) { /* attributes: name="value" or name='value' */
                while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
                if (*q == '>') break;
                if (q[0] == '/' && q[1] == '>') {
                    empty = true;
                    break;
                }
                size_t an = strcspn(q, "= \t\r\n>");
                if (an == 0 || q[an] != '=' || (q[an + 1] != '"' && q[an + 1] != '\'')) return false;
                const char *close = strchr(q + an + 2, q[an + 1]);
                if (!close || memchr(q + an + 2, '<', (size_t)(close - (q + an + 2)))) return false;
                q = close + 1;
            }
            if (depth == 0) roots++;
            if (!empty) {
                if (depth == 256) return false;
                stack[depth] = n;
                stack_len[depth++] = len;
            }
            p = q + (empty ? 2 : 1);
        }
    }
    return depth == 0 && roots == 1;
}

/* PNG and SVG of one figure written by `draw` (path without extension):
 * size, colours, title and axis text in the PNG; XML and text in the SVG. */
static void check_pair(const char *what, const char *png, const char *svg, int w, int h, const char *const *texts,
                       int n_texts)
{
    struct image im = decode_png(png);
    CHECK(im.px && im.w == w && im.h == h, "%s: PNG decodes at %d x %d (got %d x %d)", what, w, h, im.w, im.h);
    if (im.px) {
        int nc = n_colours(&im);
        CHECK(nc >= 8, "%s: PNG has %d colours", what, nc);
        long top = dark_in_rows(&im, 0, 34), bottom = dark_in_rows(&im, h - 30, h);
        long left = dark_in_cols(&im, 0, 26);
        CHECK(top > 150, "%s: title text in the top rows (%ld dark pixels)", what, top);
        CHECK(bottom > 60, "%s: x-axis text in the bottom rows (%ld dark pixels)", what, bottom);
        CHECK(left > 60, "%s: y-axis label in the left columns (%ld dark pixels)", what, left);
    }
    free(im.px);
    char *s = slurp(svg, NULL);
    CHECK(s && !strncmp(s, "<?xml", 5) && strstr(s, "<svg"), "%s: SVG written", what);
    if (s) {
        CHECK(xml_well_formed(s), "%s: SVG is well-formed XML", what);
        const char *desc = strstr(s, "<desc>");
        for (int i = 0; i < n_texts; i++)
            CHECK(desc && strstr(desc, texts[i]), "%s: SVG's <desc> holds \"%s\"", what, texts[i]);
        CHECK(texts && n_texts > 0 && strstr(s, "<title>") && !strncmp(strstr(s, "<title>") + 7, texts[0], strlen(texts[0])),
              "%s: SVG's <title> is \"%s\"", what, texts[0]);
        CHECK(strstr(s, "<path") != NULL, "%s: SVG draws paths", what);
    }
    free(s);
}

static const char *path2(const char *base, const char *ext)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s.%s", sk_test_tmpdir(), base, ext);
    return buf[k];
}

static void test_domain_plots(void)
{
    /* reliability: a hand-made table */
    struct sk_reliability rel = { .n_bins = 10, .ece = 0.0421, .mce = 0.12 };
    for (int b = 0; b < 10; b++) {
        rel.count[b] = b < 3 ? 0 : 5L << b;
        rel.conf[b] = (b + 0.5) / 10;
        rel.acc[b] = (b + 0.5) / 10 - 0.05;
    }
    const char *ext[2] = { "png", "svg" };
    for (int e = 0; e < 2; e++)
        CHECK(sk_plot_reliability(path2("rel", ext[e]), &rel) == 0, "reliability %s: %s", ext[e], sk_last_error());
    const char *rt[] = { "Reliability diagram", "ECE 0.0421", "accuracy", "confidence (max probability)", "inputs",
                         "perfectly calibrated" };
    check_pair("reliability", path2("rel", "png"), path2("rel", "svg"), 560, 560, rt, 6);

    float a[500], bb[200];
    for (int i = 0; i < 500; i++) a[i] = 0.5f + 0.45f * sinf((float)i);
    for (int i = 0; i < 200; i++) bb[i] = 1.5f + 0.5f * cosf((float)i * 0.7f);
    for (int e = 0; e < 2; e++)
        CHECK(sk_plot_histograms(path2("hist", ext[e]), "Predictive entropy", "entropy (nats)", a, 500, "test data", bb,
                                 200, "out-of-distribution", 30, 0, 2.3f) == 0,
              "histograms %s: %s", ext[e], sk_last_error());
    const char *ht[] = { "Predictive entropy", "entropy (nats)", "fraction of inputs", "test data",
                         "out-of-distribution" };
    check_pair("histograms", path2("hist", "png"), path2("hist", "svg"), 560, 420, ht, 5);

    float xf[40], yf[40];
    for (int i = 0; i < 40; i++) {
        xf[i] = -2 + 0.1f * i;
        yf[i] = xf[i] * xf[i] * expf(-xf[i]);
    }
    for (int e = 0; e < 2; e++)
        CHECK(sk_plot_line(path2("line", ext[e]), "Eigenvalue density", "eigenvalue", "density", xf, yf, 40) == 0,
              "line %s: %s", ext[e], sk_last_error());
    const char *lt[] = { "Eigenvalue density", "eigenvalue", "density" };
    check_pair("line", path2("line", "png"), path2("line", "svg"), 600, 440, lt, 3);

    double x[30], y1[30], y2[30];
    for (int i = 0; i < 30; i++) {
        x[i] = i;
        y1[i] = exp(-0.2 * i) + 0.01;
        y2[i] = 1.3 * exp(-0.15 * i) + 0.02;
    }
    y2[7] = NAN; /* breaks the line */
    struct sk_plot_series s[2] = { { x, y1, 30, "train", false }, { x, y2, 30, "test", true } };
    for (int e = 0; e < 2; e++)
        CHECK(sk_plot_lines(path2("lines", ext[e]), "Loss along the path", "position t on the path", "cross-entropy", s, 2, true) == 0,
              "lines %s: %s", ext[e], sk_last_error());
    const char *lst[] = { "Loss along the path", "cross-entropy", "train", "test" };
    check_pair("lines (log y)", path2("lines", "png"), path2("lines", "svg"), 600, 440, lst, 4);

    double gx[11], gy[9], z[99];
    for (int i = 0; i < 11; i++) gx[i] = -1 + 0.2 * i;
    for (int j = 0; j < 9; j++) gy[j] = -1 + 0.25 * j;
    for (int j = 0; j < 9; j++)
        for (int i = 0; i < 11; i++) z[j * 11 + i] = 0.2 + gx[i] * gx[i] + 2 * gy[j] * gy[j];
    for (int e = 0; e < 2; e++)
        CHECK(sk_plot_heatmap(path2("heat", ext[e]), "Loss landscape", "a (direction 1)", "b (direction 2)",
                              "cross-entropy", gx, 11, gy, 9, z, false, 8) == 0,
              "heat map %s: %s", ext[e], sk_last_error());
    const char *zt[] = { "Loss landscape", "a (direction 1)", "b (direction 2)", "cross-entropy" };
    check_pair("heat map", path2("heat", "png"), path2("heat", "svg"), 600, 480, zt, 4);
    /* the colour bar: the ramp's two ends (viridis purple and yellow) lie in
     * the strip right of the plot */
    struct image im = decode_png(path2("heat", "png"));
    bool purple = false, yellow = false;
    for (int yy = 0; im.px && yy < im.h; yy++)
        for (int xx = im.w - 120; xx < im.w; xx++) {
            const unsigned char *p = im.px + 3 * ((long)yy * im.w + xx);
            purple |= p[0] < 90 && p[1] < 20 && p[2] > 70;
            yellow |= p[0] > 230 && p[1] > 210 && p[2] < 60;
        }
    CHECK(purple && yellow, "heat map: a colour bar from purple to yellow at the right");
    free(im.px);

    float eps[4] = { 0, 0.05f, 0.1f, 0.2f };
    double acc[8] = { 0.9, 0.6, 0.3, 0.05, 0.9, 0.7, 0.5, 0.2 };
    const char *names[2] = { "PGD", "FGSM" };
    for (int e = 0; e < 2; e++)
        CHECK(sk_attack_plot_curve(path2("eps", ext[e]), "Robust accuracy", eps, 4, acc, 2, names) == 0,
              "eps curve %s: %s", ext[e], sk_last_error());
    const char *et[] = { "Robust accuracy", "accuracy", "PGD", "FGSM" };
    check_pair("eps curve", path2("eps", "png"), path2("eps", "svg"), 600, 440, et, 4);
}

static void test_grid(void)
{
    enum { N = 3, H = 28, W = 28 };
    static float x[N * H * W], xa[N * H * W];
    for (int i = 0; i < N * H * W; i++) {
        x[i] = (float)((i * 37) % 101) / 100.0f;
        xa[i] = fminf(1, fmaxf(0, x[i] + ((i % 7) - 3) * 0.02f));
    }
    int y[N] = { 0, 1, 6 }, pred[N] = { 6, 1, 0 };
    const char *cn[10];
    for (int k = 0; k < 10; k++) cn[k] = sk_data_class_name("fashion-mnist", "", k);
    CHECK(cn[0] && !strcmp(cn[0], "T-shirt/top") && !strcmp(cn[9], "Ankle boot"), "Fashion-MNIST class names");
    CHECK(!strcmp(sk_data_class_name("fashion-mnist", "6,0", 0), "Shirt") &&
              !strcmp(sk_data_class_name("fashion-mnist", "6,0", 1), "T-shirt/top") &&
              !sk_data_class_name("fashion-mnist", "6,0", 2) && !sk_data_class_name("moons", "", 0) &&
              !strcmp(sk_data_class_name("mnist", NULL, 7), "7"),
          "class names through a selection, none past it or for unnamed data");
    int h = 34 + 22 + N * 152;
    CHECK(sk_attack_plot_grid(path2("grid", "png"), x, xa, y, pred, NULL, N, 1, H, W, cn, 10) == 0, "grid png: %s",
          sk_last_error());
    CHECK(sk_attack_plot_grid(path2("grid", "svg"), x, xa, y, pred, NULL, N, 1, H, W, cn, 10) == 0, "grid svg: %s",
          sk_last_error());
    struct image im = decode_png(path2("grid", "png"));
    CHECK(im.px && im.w == 600 && im.h == h, "grid: PNG at 600 x %d (got %d x %d)", h, im.w, im.h);
    if (im.px) {
        CHECK(n_colours(&im) >= 32, "grid: greys of the images and the caption colours");
        CHECK(dark_in_rows(&im, 0, 34) > 150, "grid: title");
        long red = 0;
        for (long i = 0; i < (long)im.w * im.h; i++)
            red += im.px[3 * i] > 180 && im.px[3 * i + 1] < 90 && im.px[3 * i + 2] < 90;
        CHECK(red > 40, "grid: misclassified captions in red (%ld red pixels)", red);
    }
    free(im.px);
    char *s = slurp(path2("grid", "svg"), NULL);
    CHECK(s && xml_well_formed(s), "grid: SVG is well-formed XML");
    CHECK(s && strstr(s, "T-shirt/top \xe2\x86\x92 Shirt") && strstr(s, "Shirt \xe2\x86\x92 T-shirt/top") &&
              strstr(s, "Trouser \xe2\x86\x92 Trouser") && strstr(s, "true: T-shirt/top") && strstr(s, "original") &&
              strstr(s, "adversarial") && strstr(s, "<image"),
          "grid: captions 'true \xe2\x86\x92 adversarial' with class names, column headings, embedded images");
    free(s);
    /* without names: numbers */
    CHECK(sk_attack_plot_grid(path2("grid-n", "svg"), x, xa, y, pred, NULL, N, 1, H, W, NULL, 0) == 0, "grid without names");
    s = slurp(path2("grid-n", "svg"), NULL);
    CHECK(s && strstr(s, "0 \xe2\x86\x92 6") && strstr(s, "true: 6"), "grid: class numbers without names");
    free(s);
}

static void test_api(void)
{
    /* memory and file output agree; the format follows the extension in any case */
    struct sk_figure *f = sk_figure_new(320, 240, "Memory");
    double xs[3] = { 0, 1, 2 }, ys[3] = { 1, 3, 2 };
    sk_figure_axes(f, "panel", "x", "y");
    CHECK(sk_figure_line(f, xs, ys, 3, NULL) == 0, "line added");
    unsigned char *png = NULL, *svg = NULL;
    size_t npng = 0, nsvg = 0;
    CHECK(sk_figure_encode(f, SK_FIGURE_PNG, &png, &npng) == 0 && npng > 8 && !memcmp(png, "\x89PNG", 4), "PNG in memory");
    CHECK(sk_figure_encode(f, SK_FIGURE_SVG, &svg, &nsvg) == 0 && nsvg > 100 && strstr((char *)svg, "<svg") &&
              strlen((char *)svg) == nsvg,
          "SVG in memory, NUL-terminated");
    CHECK(sk_figure_write(f, path2("mem", "PNG")) == 0, "upper-case .PNG: %s", sk_last_error());
    size_t nf = 0;
    char *file = slurp(path2("mem", "PNG"), &nf);
    CHECK(file && nf == npng && !memcmp(file, png, nf), "the file holds the bytes of the memory encoding");
    free(file);
    CHECK(sk_figure_write(f, path2("mem", "jpg")) == SK_EINVAL && strstr(sk_last_error(), "mem.jpg") &&
              strstr(sk_last_error(), ".png or .svg"),
          "another extension is refused naming the path: %s", sk_last_error());
    enum sk_figure_format fmt;
    CHECK(sk_figure_format_of("a/b.Svg", &fmt) == 0 && fmt == SK_FIGURE_SVG, "format of .Svg");
    sk_free(png);
    sk_free(svg);
    sk_figure_free(f);

    /* errors name the field, stick to the figure, and nothing is written */
    f = sk_figure_new(320, 240, NULL);
    double hx[3] = { 0, 2, 1 }, hy[2] = { 0, 1 }, hz[6] = { 1, 2, 3, 4, 5, 6 };
    CHECK(sk_figure_heatmap(f, hx, 3, hy, 2, hz, false, 0, NULL) == SK_EINVAL && strstr(sk_last_error(), "x must increase"),
          "a decreasing heat-map axis: %s", sk_last_error());
    CHECK(sk_figure_write(f, path2("bad", "png")) == SK_EINVAL && strstr(sk_last_error(), "bad.png"),
          "the earlier error fails the write: %s", sk_last_error());
    FILE *g = fopen(path2("bad", "png"), "rb");
    CHECK(!g, "no file after a failed figure");
    if (g) fclose(g);
    sk_figure_free(f);
    CHECK(!sk_figure_new(10, 10, "x") && strstr(sk_last_error(), "64..8192"), "too small a figure: %s", sk_last_error());
    f = sk_figure_new(320, 240, NULL);
    CHECK(sk_figure_panel(f, 0.5, 0, 0.4, 1) == SK_EINVAL && strstr(sk_last_error(), "x0 < x1"), "a reversed panel");
    sk_figure_free(f);
    sk_figure_free(NULL);
    const float one[1] = { 1 };
    CHECK(sk_plot_histograms(path2("h", "png"), NULL, NULL, one, 1, NULL, NULL, 0, NULL, 10, 1, 0) == SK_EINVAL && strstr(sk_last_error(), "lo < hi"),
          "a histogram with hi <= lo: %s", sk_last_error());

    /* no shared state: figures rendered on four threads equal the serial ones */
    enum { T = 4 };
    unsigned char *ser[T] = { 0 }, *par[T] = { 0 };
    size_t nser[T] = { 0 }, npar[T] = { 0 };
    struct sk_figure *fs[T];
    for (int t = 0; t < T; t++) {
        char title[32];
        snprintf(title, sizeof title, "Thread %d", t);
        fs[t] = sk_figure_new(400, 300, title);
        double tx[50], ty[50];
        for (int i = 0; i < 50; i++) {
            tx[i] = i;
            ty[i] = sin(i * 0.1 * (t + 1));
        }
        sk_figure_axes(fs[t], NULL, "step", "value");
        sk_figure_line(fs[t], tx, ty, 50, &(struct sk_figure_style){ .label = "sine", .markers = t % 2 == 1 });
        sk_figure_encode(fs[t], SK_FIGURE_PNG, &ser[t], &nser[t]);
    }
    int bad = 0;
#pragma omp parallel for num_threads(T) reduction(+ : bad)
    for (int t = 0; t < T; t++) bad += sk_figure_encode(fs[t], SK_FIGURE_PNG, &par[t], &npar[t]) != 0;
    bool same = !bad;
    for (int t = 0; t < T; t++) {
        same = same && ser[t] && par[t] && nser[t] == npar[t] && !memcmp(ser[t], par[t], nser[t]);
        sk_free(ser[t]);
        sk_free(par[t]);
        sk_figure_free(fs[t]);
    }
    CHECK(same, "figures encoded on %d threads at once equal the serial encodings", T);
}

int main(void)
{
    test_domain_plots();
    test_grid();
    test_api();
    return sk_test_finish("test_figure");
}
