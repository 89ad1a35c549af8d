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

/* ---- several series; heat maps with contours and a colour bar ---- */

/* Numbered ticks of [lo, hi] on an axis: along x (at pixel row B) or y (at
 * column L); value v sits at pixel pos(v). lg: the axis is log10 of the
 * values, ticks labelled with 10^t. */
static void axis_ticks(struct canvas *c, bool along_x, double lo, double hi, bool lg, int L, int R, int T, int B)
{
    static const unsigned char black[3] = { 0, 0, 0 }, grid[3] = { 225, 225, 225 };
    double st = tick_step(hi - lo);
    if (lg && st < 1 && hi - lo > 2) st = 1; /* decades; within less, ticks at 10^t */
    char buf[32];
    for (double t = ceil(lo / st - 1e-9) * st; t <= hi + 1e-9 * st; t += st) {
        double v = fabs(t) < 1e-9 * st ? 0.0 : t;
        snprintf(buf, sizeof buf, "%.3g", lg ? pow(10, v) : v);
        if (along_x) {
            int x = L + (int)lround((t - lo) / (hi - lo) * (R - L));
            fill(c, x, T, x, B, grid);
            fill(c, x, B, x, B + 4, black);
            glyph_text(c, x - 3 * (int)strlen(buf), B + 8, buf, black);
        } else {
            int y = B - (int)lround((t - lo) / (hi - lo) * (B - T));
            fill(c, L, y, R, y, grid);
            fill(c, L - 4, y, L, y, black);
            glyph_text(c, L - 6 - 6 * (int)strlen(buf), y - 3, buf, black);
        }
    }
}

static void seg(struct canvas *c, int x0, int y0, int x1, int y1, bool dashed, const unsigned char rgb[3])
{
    int steps = abs(x1 - x0) > abs(y1 - y0) ? abs(x1 - x0) : abs(y1 - y0);
    for (int s = 0; s <= steps; s++) {
        int ax = steps ? x0 + (x1 - x0) * s / steps : x0, ay = steps ? y0 + (y1 - y0) * s / steps : y0;
        if (!dashed || ((ax + ay) / 6) % 2 == 0) fill(c, ax, ay, ax + 1, ay + 1, rgb);
    }
}

int sk_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const struct sk_plot_series *s, int n_series, bool log_y)
{
    static const unsigned char black[3] = { 0, 0, 0 }, white[3] = { 255, 255, 255 };
    static const unsigned char colours[6][3] = { { 46, 104, 181 }, { 214, 64, 52 }, { 44, 160, 44 },
                                                 { 240, 140, 30 }, { 148, 103, 189 }, { 90, 90, 90 } };
    if (!path || !s || n_series < 1 || n_series > 6)
        return sk_error(SK_EINVAL, "sk_plot_lines: needs a path and 1 to 6 series (got %d)", n_series);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
#define YV(v) (log_y ? log10(v) : (v))
#define OK(xv, yv) (isfinite(xv) && isfinite(yv) && (!log_y || (yv) > 0))
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!OK(s[k].x[i], s[k].y[i])) continue;
            x0 = fmin(x0, s[k].x[i]);
            x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, YV(s[k].y[i]));
            y1 = fmax(y1, YV(s[k].y[i]));
        }
    if (!(x0 <= x1) || !(y0 <= y1)) return sk_error(SK_EINVAL, "sk_plot_lines: no finite point to draw");
    if (x1 - x0 < 1e-30) { x0 -= 0.5; x1 += 0.5; }
    if (y1 - y0 < 1e-30) { y0 -= 0.5; y1 += 0.5; }
    double pad = 0.04 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    struct canvas *c = sk_malloc(sizeof *c);
    if (!c) return SK_ENOMEM;
    fill(c, 0, 0, W - 1, H - 1, white);
    int named = 0;
    for (int k = 0; k < n_series; k++) named += s[k].name != NULL;
    /* the legend sits above the box, right-aligned, one row per named series */
    int L = 66, R = W - 16, T = named > 1 ? 24 + 12 * named : 40, B = H - 50;
    axis_ticks(c, true, x0, x1, false, L, R, T, B);
    axis_ticks(c, false, y0, y1, log_y, L, R, T, B);
    fill(c, L, B, R, B + 1, black);
    fill(c, L - 1, T, L, B, black);
    for (int k = 0; k < n_series; k++) {
        const unsigned char *col = colours[k];
        bool have = false;
        int px = 0, py = 0;
        for (int i = 0; i < s[k].n; i++) {
            if (!OK(s[k].x[i], s[k].y[i])) {
                have = false;
                continue;
            }
            int qx = L + (int)lround((s[k].x[i] - x0) / (x1 - x0) * (R - L));
            int qy = B - (int)lround((YV(s[k].y[i]) - y0) / (y1 - y0) * (B - T));
            if (have) seg(c, px, py, qx, qy, s[k].dashed, col);
            else if (s[k].n == 1 || (i + 1 < s[k].n && !OK(s[k].x[i + 1], s[k].y[i + 1]))) fill(c, qx - 1, qy - 1, qx + 1, qy + 1, col);
            px = qx;
            py = qy;
            have = true;
        }
        if (s[k].name) {
            int ly = 8 + 12 * k, lx = R - 6 * (int)strlen(s[k].name) - 22;
            seg(c, lx, ly + 3, lx + 14, ly + 3, s[k].dashed, col);
            glyph_text(c, lx + 20, ly, s[k].name, black);
        }
    }
#undef YV
#undef OK
    if (xlabel) glyph_text(c, (L + R) / 2 - 3 * (int)strlen(xlabel), H - 22, xlabel, black);
    if (ylabel) glyph_text(c, 8, T - 14, ylabel, black);
    if (title) glyph_text(c, L, 10, title, black);
    int rc = write_png(path, c);
    sk_free(c);
    return rc;
}

/* A perceptually ordered colour ramp (viridis at five stops), u in [0, 1]. */
static void ramp(double u, unsigned char rgb[3])
{
    static const double stops[5][3] = { { 68, 1, 84 }, { 59, 82, 139 }, { 33, 145, 140 }, { 94, 201, 98 },
                                        { 253, 231, 37 } };
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double f = u * 4;
    int k = f >= 4 ? 3 : (int)f;
    f -= k;
    for (int j = 0; j < 3; j++) rgb[j] = (unsigned char)lround(stops[k][j] * (1 - f) + stops[k + 1][j] * f);
}

int sk_plot_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel, const char *zlabel,
                    const double *x, int nx, const double *y, int ny, const double *z, bool log_z, int n_levels)
{
    static const unsigned char black[3] = { 0, 0, 0 }, white[3] = { 255, 255, 255 }, line[3] = { 255, 255, 255 };
    if (!path || !x || !y || !z || nx < 2 || ny < 2 || n_levels < 0 || n_levels > 100)
        return sk_error(SK_EINVAL, "sk_plot_heatmap: needs a path, a grid of at least 2 x 2 and 0..100 levels");
    double z0 = INFINITY, z1 = -INFINITY;
    for (int i = 0; i < nx * ny; i++) {
        double v = log_z ? (z[i] > 0 ? log10(z[i]) : NAN) : z[i];
        if (!isfinite(v)) continue;
        z0 = fmin(z0, v);
        z1 = fmax(z1, v);
    }
    if (!(z0 <= z1)) return sk_error(SK_EINVAL, "sk_plot_heatmap: no finite value to draw");
    if (z1 - z0 < 1e-30) { z0 -= 0.5; z1 += 0.5; }
    for (int i = 1; i < nx; i++)
        if (!(x[i] > x[i - 1])) return sk_error(SK_EINVAL, "sk_plot_heatmap: x must increase");
    for (int j = 1; j < ny; j++)
        if (!(y[j] > y[j - 1])) return sk_error(SK_EINVAL, "sk_plot_heatmap: y must increase");
    struct canvas *c = sk_malloc(sizeof *c);
    if (!c) return SK_ENOMEM;
    fill(c, 0, 0, W - 1, H - 1, white);
    int L = 60, R = W - 110, T = 40, B = H - 50;
    /* value at every pixel by bilinear interpolation of the grid; its
     * contour band; a pixel whose band differs from its right or lower
     * neighbour's lies on a contour line */
    int pw = R - L + 1, ph = B - T + 1;
    double *val = sk_malloc(sizeof(double) * (size_t)pw * (size_t)ph);
    if (!val) {
        sk_free(c);
        return SK_ENOMEM;
    }
    for (int py = 0; py < ph; py++) {
        double yv = y[0] + (y[ny - 1] - y[0]) * (double)(ph - 1 - py) / (ph - 1);
        int j = 0;
        while (j < ny - 2 && y[j + 1] < yv) j++;
        double fy = (yv - y[j]) / (y[j + 1] - y[j]);
        for (int px = 0; px < pw; px++) {
            double xv = x[0] + (x[nx - 1] - x[0]) * (double)px / (pw - 1);
            int i = 0;
            while (i < nx - 2 && x[i + 1] < xv) i++;
            double fx = (xv - x[i]) / (x[i + 1] - x[i]);
            double a = z[j * nx + i], b = z[j * nx + i + 1], d = z[(j + 1) * nx + i], e = z[(j + 1) * nx + i + 1];
            double v = (a * (1 - fx) + b * fx) * (1 - fy) + (d * (1 - fx) + e * fx) * fy;
            val[(size_t)py * pw + px] = log_z ? (v > 0 ? log10(v) : NAN) : v;
        }
    }
    for (int py = 0; py < ph; py++)
        for (int px = 0; px < pw; px++) {
            double v = val[(size_t)py * pw + px];
            unsigned char rgb[3] = { 200, 200, 200 };
            if (isfinite(v)) ramp((v - z0) / (z1 - z0), rgb);
            if (n_levels > 0 && isfinite(v)) {
                int band = (int)floor((v - z0) / (z1 - z0) * n_levels);
                double vr = px + 1 < pw ? val[(size_t)py * pw + px + 1] : v, vd = py + 1 < ph ? val[(size_t)(py + 1) * pw + px] : v;
                int br = isfinite(vr) ? (int)floor((vr - z0) / (z1 - z0) * n_levels) : band;
                int bd = isfinite(vd) ? (int)floor((vd - z0) / (z1 - z0) * n_levels) : band;
                if (br != band || bd != band) memcpy(rgb, line, 3);
            }
            memcpy(c->px[T + py][L + px], rgb, 3);
        }
    sk_free(val);
    axis_ticks(c, true, x[0], x[nx - 1], false, L, R, B, B);
    axis_ticks(c, false, y[0], y[ny - 1], false, L, L, T, B);
    fill(c, L, B + 1, R, B + 1, black);
    fill(c, L - 1, T, L - 1, B, black);
    /* the colour bar, with its own ticks (in z's units) */
    int cx0 = R + 14, cx1 = R + 28;
    for (int py = T; py <= B; py++) {
        unsigned char rgb[3];
        ramp((double)(B - py) / (B - T), rgb);
        fill(c, cx0, py, cx1, py, rgb);
    }
    double st = tick_step(z1 - z0);
    if (log_z && st < 1 && z1 - z0 > 2) st = 1;
    char buf[32];
    for (double t = ceil(z0 / st - 1e-9) * st; t <= z1 + 1e-9 * st; t += st) {
        int yy = B - (int)lround((t - z0) / (z1 - z0) * (B - T));
        fill(c, cx1, yy, cx1 + 3, yy, black);
        snprintf(buf, sizeof buf, "%.3g", log_z ? pow(10, t) : (fabs(t) < 1e-9 * st ? 0.0 : t));
        glyph_text(c, cx1 + 6, yy - 3, buf, black);
    }
    if (zlabel) glyph_text(c, cx0 - 6, T - 14, zlabel, black);
    if (xlabel) glyph_text(c, (L + R) / 2 - 3 * (int)strlen(xlabel), H - 22, xlabel, black);
    if (ylabel) glyph_text(c, 8, T - 14, ylabel, black);
    if (title) glyph_text(c, L, 10, title, black);
    int rc = write_png(path, c);
    sk_free(c);
    return rc;
}
