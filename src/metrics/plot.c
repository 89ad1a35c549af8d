/* Reliability diagrams and histograms as PNG (libpng into memory, then one
 * atomic write). */
#include "skeptic/io.h"
#include "skeptic/metrics.h"

#include <math.h>
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
