/* Reliability diagrams and histograms as PNG (libpng into memory, then one
 * atomic write). */
#include "skeptic/io.h"
#include "skeptic/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 480
#define H 400
#define M 40 /* margin */

struct canvas {
    unsigned char px[H][W][3];
};

static void fill(struct canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < H; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < W; x++) memcpy(c->px[y][x], rgb, 3);
}

static void blend(struct canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3], float a)
{
    if (x0 > x1) { int t = x0; x0 = x1; x1 = t; }
    if (y0 > y1) { int t = y0; y0 = y1; y1 = t; }
    for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < H; y++)
        for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < W; x++)
            for (int k = 0; k < 3; k++) c->px[y][x][k] = (unsigned char)(c->px[y][x][k] * (1 - a) + rgb[k] * a);
}

/* plot coordinates: u, v in [0,1] -> pixels */
static int px_x(double u) { return M + (int)lround(u * (W - 2 * M)); }
static int px_y(double v) { return H - M - (int)lround(v * (H - 2 * M)); }

static void axes(struct canvas *c)
{
    static const unsigned char white[3] = { 255, 255, 255 }, black[3] = { 0, 0, 0 }, grid[3] = { 225, 225, 225 };
    fill(c, 0, 0, W - 1, H - 1, white);
    for (int t = 0; t <= 10; t++) {
        int x = px_x(t / 10.0), y = px_y(t / 10.0);
        fill(c, x, px_y(1), x, px_y(0), grid);
        fill(c, px_x(0), y, px_x(1), y, grid);
        fill(c, x, px_y(0), x, px_y(0) + (t % 5 ? 4 : 8), black);
        fill(c, px_x(0) - (t % 5 ? 4 : 8), y, px_x(0), y, black);
    }
    fill(c, px_x(0), px_y(0), px_x(1), px_y(0), black);
    fill(c, px_x(0), px_y(1), px_x(0), px_y(0), black);
}

static int write_png(const char *path, struct canvas *c)
{
    return sk_png_write_rgb(path, &c->px[0][0][0], W, H);
}

int sk_plot_reliability(const char *path, const struct sk_reliability *rel)
{
    static const unsigned char blue[3] = { 46, 104, 181 }, red[3] = { 214, 64, 52 }, grey[3] = { 90, 90, 90 };
    if (rel->n_bins < 1 || rel->n_bins > SK_METRIC_MAX_BINS) return sk_error(SK_EINVAL, "reliability table has no bins");
    struct canvas *c = sk_malloc(sizeof *c);
    if (!c) return SK_ENOMEM;
    axes(c);
    int B = rel->n_bins;
    long maxc = 1;
    for (int b = 0; b < B; b++)
        if (rel->count[b] > maxc) maxc = rel->count[b];
    for (int b = 0; b < B; b++) {
        int x0 = px_x((double)b / B) + 1, x1 = px_x((double)(b + 1) / B) - 1;
        if (rel->count[b] > 0) {
            fill(c, x0, px_y(0), x1, px_y(rel->acc[b]), blue);
            blend(c, x0, px_y(rel->acc[b]), x1, px_y(rel->conf[b]), red, 0.55f);
        }
        /* count strip under the axis: darker = more inputs */
        float shade = rel->count[b] > 0 ? (float)(0.15 + 0.85 * log1p((double)rel->count[b]) / log1p((double)maxc)) : 0;
        blend(c, x0, px_y(0) + 12, x1, px_y(0) + 20, grey, shade);
    }
    /* the diagonal */
    for (int i = 0; i <= 1000; i++) {
        double u = i / 1000.0;
        fill(c, px_x(u) - 1, px_y(u) - 1, px_x(u) + 1, px_y(u) + 1, grey);
    }
    int rc = write_png(path, c);
    sk_free(c);
    return rc;
}

int sk_plot_histograms(const char *path, const float *a, int na, const float *b, int nb, int bins, float lo, float hi)
{
    static const unsigned char blue[3] = { 46, 104, 181 }, orange[3] = { 240, 140, 30 };
    if (bins < 1 || bins > 1000 || !(hi > lo)) return sk_error(SK_EINVAL, "histogram needs 1..1000 bins and hi > lo");
    double ha[1000] = { 0 }, hb[1000] = { 0 }, mx = 0;
    for (int pass = 0; pass < 2; pass++) {
        const float *v = pass ? b : a;
        int n = pass ? nb : na;
        double *h = pass ? hb : ha;
        for (int i = 0; i < n; i++) {
            if (!isfinite(v[i])) continue;
            int k = (int)((v[i] - lo) / (hi - lo) * bins);
            if (k < 0) k = 0;
            if (k >= bins) k = bins - 1;
            h[k] += 1.0 / (n > 0 ? n : 1);
        }
        for (int k = 0; k < bins; k++) mx = fmax(mx, h[k]);
    }
    struct canvas *c = sk_malloc(sizeof *c);
    if (!c) return SK_ENOMEM;
    axes(c);
    for (int k = 0; k < bins; k++) {
        int x0 = px_x((double)k / bins) + 1, x1 = px_x((double)(k + 1) / bins) - 1;
        if (ha[k] > 0) blend(c, x0, px_y(0), x1, px_y(ha[k] / (mx > 0 ? mx : 1)), blue, 0.6f);
        if (hb[k] > 0) blend(c, x0, px_y(0), x1, px_y(hb[k] / (mx > 0 ? mx : 1)), orange, 0.6f);
    }
    int rc = write_png(path, c);
    sk_free(c);
    return rc;
}

/* ---- labelled line charts ----
 * A 5x7 bitmap font (uppercase, digits, a few signs) for titles, axis names
 * and tick values; lowercase is drawn as uppercase. */
static const struct {
    char c;
    unsigned char rows[7];
} glyphs[] = {
    { '0', { 14, 17, 19, 21, 25, 17, 14 } }, { '1', { 4, 12, 4, 4, 4, 4, 14 } }, { '2', { 14, 17, 1, 2, 4, 8, 31 } },
    { '3', { 31, 2, 4, 2, 1, 17, 14 } },     { '4', { 2, 6, 10, 18, 31, 2, 2 } }, { '5', { 31, 16, 30, 1, 1, 17, 14 } },
    { '6', { 6, 8, 16, 30, 17, 17, 14 } },   { '7', { 31, 1, 2, 4, 8, 8, 8 } },   { '8', { 14, 17, 17, 14, 17, 17, 14 } },
    { '9', { 14, 17, 17, 15, 1, 2, 12 } },   { '.', { 0, 0, 0, 0, 0, 12, 12 } }, { '-', { 0, 0, 0, 31, 0, 0, 0 } },
    { '+', { 0, 4, 4, 31, 4, 4, 0 } },       { ':', { 0, 12, 12, 0, 12, 12, 0 } }, { '=', { 0, 0, 31, 0, 31, 0, 0 } },
    { '/', { 1, 1, 2, 4, 8, 16, 16 } },      { '(', { 2, 4, 8, 8, 8, 4, 2 } },   { ')', { 8, 4, 2, 2, 2, 4, 8 } },
    { ',', { 0, 0, 0, 0, 12, 4, 8 } },       { 'A', { 14, 17, 17, 31, 17, 17, 17 } }, { 'B', { 30, 17, 17, 30, 17, 17, 30 } },
    { 'C', { 14, 17, 16, 16, 16, 17, 14 } }, { 'D', { 28, 18, 17, 17, 17, 18, 28 } }, { 'E', { 31, 16, 16, 30, 16, 16, 31 } },
    { 'F', { 31, 16, 16, 30, 16, 16, 16 } }, { 'G', { 14, 17, 16, 23, 17, 17, 15 } }, { 'H', { 17, 17, 17, 31, 17, 17, 17 } },
    { 'I', { 14, 4, 4, 4, 4, 4, 14 } },      { 'J', { 7, 2, 2, 2, 2, 18, 12 } },  { 'K', { 17, 18, 20, 24, 20, 18, 17 } },
    { 'L', { 16, 16, 16, 16, 16, 16, 31 } }, { 'M', { 17, 27, 21, 21, 17, 17, 17 } }, { 'N', { 17, 17, 25, 21, 19, 17, 17 } },
    { 'O', { 14, 17, 17, 17, 17, 17, 14 } }, { 'P', { 30, 17, 17, 30, 16, 16, 16 } }, { 'Q', { 14, 17, 17, 17, 21, 18, 13 } },
    { 'R', { 30, 17, 17, 30, 20, 18, 17 } }, { 'S', { 15, 16, 16, 14, 1, 1, 30 } }, { 'T', { 31, 4, 4, 4, 4, 4, 4 } },
    { 'U', { 17, 17, 17, 17, 17, 17, 14 } }, { 'V', { 17, 17, 17, 17, 17, 10, 4 } }, { 'W', { 17, 17, 17, 21, 21, 21, 10 } },
    { 'X', { 17, 17, 10, 4, 10, 17, 17 } },  { 'Y', { 17, 17, 17, 10, 4, 4, 4 } }, { 'Z', { 31, 1, 2, 4, 8, 16, 31 } },
};

static void glyph_text(struct canvas *c, int x, int y, const char *t, const unsigned char rgb[3])
{
    for (; *t; t++, x += 6) {
        char ch = *t >= 'a' && *t <= 'z' ? (char)(*t - 32) : *t;
        for (size_t g = 0; g < sizeof glyphs / sizeof *glyphs; g++) {
            if (glyphs[g].c != ch) continue;
            for (int r = 0; r < 7; r++)
                for (int b = 0; b < 5; b++)
                    if (glyphs[g].rows[r] >> (4 - b) & 1) fill(c, x + b, y + r, x + b, y + r, rgb);
        }
    }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks. */
static double tick_step(double span)
{
    double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

int sk_plot_line(const char *path, const char *title, const char *xlabel, const char *ylabel, const float *x,
                 const float *y, int n)
{
    static const unsigned char black[3] = { 0, 0, 0 }, blue[3] = { 46, 104, 181 }, grid[3] = { 225, 225, 225 },
                               white[3] = { 255, 255, 255 };
    if (!path || !x || !y || n < 2) return sk_error(SK_EINVAL, "sk_plot_line: needs a path and n >= 2 points");
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        x0 = fmin(x0, x[i]);
        x1 = fmax(x1, x[i]);
        y0 = fmin(y0, y[i]);
        y1 = fmax(y1, y[i]);
    }
    if (!(x0 <= x1) || !(y0 <= y1)) return sk_error(SK_EINVAL, "sk_plot_line: no finite point to draw");
    if (x1 - x0 < 1e-30) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-30) { y0 -= 0.5; y1 += 0.5; }
    double ys = tick_step(y1 - y0), xs = tick_step(x1 - x0);
    y0 = floor(y0 / ys) * ys;
    y1 = ceil(y1 / ys) * ys;
    struct canvas *c = sk_malloc(sizeof *c);
    if (!c) return SK_ENOMEM;
    fill(c, 0, 0, W - 1, H - 1, white);
    /* plot box: left 60, right W-20, top 40, bottom H-50 */
    int L = 60, R = W - 20, T = 40, B = H - 50;
#define PX(u) (L + (int)lround(((u) - x0) / (x1 - x0) * (R - L)))
#define PY(v) (B - (int)lround(((v) - y0) / (y1 - y0) * (B - T)))
    char buf[32];
    for (double t = ceil(x0 / xs) * xs; t <= x1 + 1e-9 * xs; t += xs) {
        fill(c, PX(t), T, PX(t), B, grid);
        fill(c, PX(t), B, PX(t), B + 4, black);
        snprintf(buf, sizeof buf, "%.3g", fabs(t) < 1e-9 * xs ? 0.0 : t);
        glyph_text(c, PX(t) - 3 * (int)strlen(buf), B + 8, buf, black);
    }
    for (double t = y0; t <= y1 + 1e-9 * ys; t += ys) {
        fill(c, L, PY(t), R, PY(t), grid);
        fill(c, L - 4, PY(t), L, PY(t), black);
        snprintf(buf, sizeof buf, "%.3g", fabs(t) < 1e-9 * ys ? 0.0 : t);
        glyph_text(c, L - 6 - 6 * (int)strlen(buf), PY(t) - 3, buf, black);
    }
    fill(c, L, B, R, B + 1, black);
    fill(c, L - 1, T, L, B, black);
    int px = 0, py = 0;
    bool have = false;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            have = false;
            continue;
        }
        int qx = PX(x[i]), qy = PY(y[i]);
        if (have) { /* a 2-pixel line from (px, py) to (qx, qy) */
            int steps = abs(qx - px) > abs(qy - py) ? abs(qx - px) : abs(qy - py);
            for (int s = 0; s <= steps; s++) {
                int ax = steps ? px + (qx - px) * s / steps : px, ay = steps ? py + (qy - py) * s / steps : py;
                fill(c, ax, ay, ax + 1, ay + 1, blue);
            }
        }
        px = qx;
        py = qy;
        have = true;
    }
#undef PX
#undef PY
    if (xlabel) glyph_text(c, (L + R) / 2 - 3 * (int)strlen(xlabel), H - 22, xlabel, black);
    if (ylabel) glyph_text(c, 8, T - 14, ylabel, black);
    if (title) glyph_text(c, L, 10, title, black);
    int rc = write_png(path, c);
    sk_free(c);
    return rc;
}
