/* Pictures and arrays of attack results: the accuracy-versus-eps plot and
 * the grid of originals / perturbations / adversarial examples (PNG through
 * libpng into memory, then one atomic write), and .npy output. */
#include "attack/internal.h"
#include "skeptic/io.h"

#include <stdio.h>

/* 5x7 bitmap glyphs (rows top to bottom, 5 bits each, MSB left) */
static const struct {
    char c;
    unsigned char rows[7];
} font[] = {
    { '0', { 14, 17, 19, 21, 25, 17, 14 } }, { '1', { 4, 12, 4, 4, 4, 4, 14 } },
    { '2', { 14, 17, 1, 2, 4, 8, 31 } },     { '3', { 31, 2, 4, 2, 1, 17, 14 } },
    { '4', { 2, 6, 10, 18, 31, 2, 2 } },     { '5', { 31, 16, 30, 1, 1, 17, 14 } },
    { '6', { 6, 8, 16, 30, 17, 17, 14 } },   { '7', { 31, 1, 2, 4, 8, 8, 8 } },
    { '8', { 14, 17, 17, 14, 17, 17, 14 } }, { '9', { 14, 17, 17, 15, 1, 2, 12 } },
    { '.', { 0, 0, 0, 0, 0, 12, 12 } },      { '-', { 0, 0, 0, 31, 0, 0, 0 } },
    { ':', { 0, 12, 12, 0, 12, 12, 0 } },    { '=', { 0, 0, 31, 0, 31, 0, 0 } },
    { '%', { 24, 25, 2, 4, 8, 19, 3 } },     { '/', { 1, 1, 2, 4, 8, 16, 16 } },
    { '(', { 2, 4, 8, 8, 8, 4, 2 } },        { ')', { 8, 4, 2, 2, 2, 4, 8 } },
    { 'A', { 14, 17, 17, 31, 17, 17, 17 } }, { 'B', { 30, 17, 17, 30, 17, 17, 30 } },
    { 'C', { 14, 17, 16, 16, 16, 17, 14 } }, { 'D', { 28, 18, 17, 17, 17, 18, 28 } },
    { 'E', { 31, 16, 16, 30, 16, 16, 31 } }, { 'F', { 31, 16, 16, 30, 16, 16, 16 } },
    { 'G', { 14, 17, 16, 23, 17, 17, 15 } }, { 'H', { 17, 17, 17, 31, 17, 17, 17 } },
    { 'I', { 14, 4, 4, 4, 4, 4, 14 } },      { 'J', { 7, 2, 2, 2, 2, 18, 12 } },
    { 'K', { 17, 18, 20, 24, 20, 18, 17 } }, { 'L', { 16, 16, 16, 16, 16, 16, 31 } },
    { 'M', { 17, 27, 21, 21, 17, 17, 17 } }, { 'N', { 17, 17, 25, 21, 19, 17, 17 } },
    { 'O', { 14, 17, 17, 17, 17, 17, 14 } }, { 'P', { 30, 17, 17, 30, 16, 16, 16 } },
    { 'Q', { 14, 17, 17, 17, 21, 18, 13 } }, { 'R', { 30, 17, 17, 30, 20, 18, 17 } },
    { 'S', { 15, 16, 16, 14, 1, 1, 30 } },   { 'T', { 31, 4, 4, 4, 4, 4, 4 } },
    { 'U', { 17, 17, 17, 17, 17, 17, 14 } }, { 'V', { 17, 17, 17, 17, 17, 10, 4 } },
    { 'W', { 17, 17, 17, 21, 21, 21, 10 } }, { 'X', { 17, 17, 10, 4, 10, 17, 17 } },
    { 'Y', { 17, 17, 17, 10, 4, 4, 4 } },    { 'Z', { 31, 1, 2, 4, 8, 16, 31 } },
};

struct img {
    int w, h;
    unsigned char *px; /* h x w x 3 */
};

static void put(struct img *im, int x, int y, const unsigned char rgb[3])
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(im->px + ((size_t)y * im->w + x) * 3, rgb, 3);
}

static void rect(struct img *im, int x0, int y0, int x1, int y1, const unsigned char rgb[3])
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(im, x, y, rgb);
}

/* text at (x, y) top-left, scale s; lowercase drawn as uppercase */
static void text(struct img *im, int x, int y, int s, const char *t, const unsigned char rgb[3])
{
    for (; *t; t++, x += 6 * s) {
        char ch = *t >= 'a' && *t <= 'z' ? (char)(*t - 32) : *t;
        for (size_t g = 0; g < sizeof font / sizeof *font; g++) {
            if (font[g].c != ch) continue;
            for (int r = 0; r < 7; r++)
                for (int b = 0; b < 5; b++)
                    if (font[g].rows[r] >> (4 - b) & 1) rect(im, x + b * s, y + r * s, x + b * s + s - 1, y + r * s + s - 1, rgb);
        }
    }
}

static void line(struct img *im, int x0, int y0, int x1, int y1, int thick, const unsigned char rgb[3])
{
    int n = abs(x1 - x0) > abs(y1 - y0) ? abs(x1 - x0) : abs(y1 - y0);
    for (int i = 0; i <= n; i++) {
        int x = n ? x0 + (x1 - x0) * i / n : x0, y = n ? y0 + (y1 - y0) * i / n : y0;
        rect(im, x - thick / 2, y - thick / 2, x + thick / 2, y + thick / 2, rgb);
    }
}

static int write_png(const char *path, const struct img *im)
{
    return sk_png_write_rgb(path, im->px, im->w, im->h);
}

static const unsigned char WHITE[3] = { 255, 255, 255 }, BLACK[3] = { 0, 0, 0 }, GRID[3] = { 225, 225, 225 };
static const unsigned char SERIES[4][3] = { { 31, 119, 180 }, { 214, 39, 40 }, { 44, 160, 44 }, { 148, 103, 189 } };

int sk_attack_plot_curve(const char *path, const char *title, const float *eps, int n_eps, const double *acc,
                         int n_series, const char *const *names)
{
    if (!path || !eps || !acc || n_eps < 1 || n_series < 1 || n_series > 4)
        return sk_error(SK_EINVAL, "sk_attack_plot_curve: bad arguments");
    struct img im = { 560, 420, NULL };
    im.px = sk_malloc((size_t)im.w * im.h * 3);
    if (!im.px) return SK_ENOMEM;
    rect(&im, 0, 0, im.w - 1, im.h - 1, WHITE);
    int L = 70, R = im.w - 30, T = 50, B = im.h - 60;
    double emax = eps[n_eps - 1] > 0 ? eps[n_eps - 1] : 1;
    char buf[64];
    for (int t = 0; t <= 10; t++) {
        int y = B - (B - T) * t / 10;
        line(&im, L, y, R, y, 1, GRID);
        if (t % 2 == 0) {
            snprintf(buf, sizeof buf, "%.1f", t / 10.0);
            text(&im, L - 32, y - 3, 1, buf, BLACK);
        }
    }
    for (int e = 0; e < n_eps; e++) {
        int x = L + (int)lround((R - L) * eps[e] / emax);
        line(&im, x, T, x, B, 1, GRID);
        snprintf(buf, sizeof buf, "%g", eps[e]);
        text(&im, x - (int)strlen(buf) * 3, B + 8, 1, buf, BLACK);
    }
    line(&im, L, B, R, B, 2, BLACK);
    line(&im, L, T, L, B, 2, BLACK);
    text(&im, (L + R) / 2 - 9, B + 26, 2, "EPS", BLACK);
    text(&im, 8, T - 20, 1, "ROBUST ACCURACY", BLACK);
    if (title) text(&im, L, 12, 2, title, BLACK);
    for (int s = 0; s < n_series; s++) {
        const double *a = acc + (size_t)s * n_eps;
        int px = 0, py = 0;
        for (int e = 0; e < n_eps; e++) {
            int x = L + (int)lround((R - L) * eps[e] / emax), y = B - (int)lround((B - T) * a[e]);
            if (e) line(&im, px, py, x, y, 3, SERIES[s]);
            rect(&im, x - 4, y - 4, x + 4, y + 4, SERIES[s]);
            px = x;
            py = y;
        }
        if (names && names[s]) {
            rect(&im, R - 150, T + 6 + 16 * s, R - 138, T + 16 + 16 * s, SERIES[s]);
            text(&im, R - 132, T + 5 + 16 * s, 1, names[s], BLACK);
        }
    }
    int rc = write_png(path, &im);
    sk_free(im.px);
    return rc;
}

int sk_attack_grid_png(const char *path, const float *x, const float *x_adv, const int *y, const int *pred,
                       const int *idx, int n_show, int C, int H, int W)
{
    if (!path || !x || !x_adv || n_show < 1 || C < 1 || H < 1 || W < 1 || (C != 1 && C != 3))
        return sk_error(SK_EINVAL, "sk_attack_grid_png: bad arguments (images must have 1 or 3 channels)");
    int s = H < 64 ? 3 : 1, cw = W * s, ch = H * s, pad = 8, lab = 14;
    struct img im = { pad + 3 * (cw + pad), pad + 14 + n_show * (ch + lab + pad), NULL };
    im.px = sk_malloc((size_t)im.w * im.h * 3);
    if (!im.px) return SK_ENOMEM;
    rect(&im, 0, 0, im.w - 1, im.h - 1, WHITE);
    text(&im, pad, 4, 1, "ORIGINAL", BLACK);
    text(&im, pad + cw + pad, 4, 1, "DELTA (MAG)", BLACK);
    text(&im, pad + 2 * (cw + pad), 4, 1, "ADVERSARIAL", BLACK);
    int D = C * H * W;
    for (int r = 0; r < n_show; r++) {
        int i = idx ? idx[r] : r;
        const float *xo = x + (size_t)i * D, *xa = x_adv + (size_t)i * D;
        float dmax = 1e-12f;
        for (int j = 0; j < D; j++) dmax = fmaxf(dmax, fabsf(xa[j] - xo[j]));
        int y0 = pad + 14 + r * (ch + lab + pad);
        for (int col = 0; col < 3; col++) {
            int x0 = pad + col * (cw + pad);
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    unsigned char rgb[3];
                    for (int k = 0; k < 3; k++) {
                        int c = C == 3 ? k : 0;
                        size_t q = ((size_t)c * H + h) * W + w;
                        float v = col == 0 ? xo[q] : col == 2 ? xa[q] : 0.5f + 0.5f * (xa[q] - xo[q]) / dmax;
                        v = fminf(fmaxf(v, 0), 1);
                        rgb[k] = (unsigned char)lroundf(v * 255);
                    }
                    rect(&im, x0 + w * s, y0 + h * s, x0 + w * s + s - 1, y0 + h * s + s - 1, rgb);
                }
        }
        char buf[64];
        snprintf(buf, sizeof buf, "TRUE %d", y ? y[i] : -1);
        text(&im, pad, y0 + ch + 3, 1, buf, BLACK);
        snprintf(buf, sizeof buf, "X%.0f", 0.5 / dmax);
        text(&im, pad + cw + pad, y0 + ch + 3, 1, buf, BLACK);
        snprintf(buf, sizeof buf, "PRED %d", pred ? pred[i] : -1);
        text(&im, pad + 2 * (cw + pad), y0 + ch + 3, 1, buf, pred && y && pred[i] != y[i] ? SERIES[1] : BLACK);
    }
    int rc = write_png(path, &im);
    sk_free(im.px);
    return rc;
}

int sk_attack_save_npy(const char *path, const float *x, int n, int C, int H, int W)
{
    char hdr[256];
    int len;
    if (H > 1 || W > 1)
        len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d, %d), }", n, C,
                       H, W);
    else
        len = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, C);
    /* magic (6) + version (2) + header length (2) + header padded with spaces to 64 bytes, ending in \n */
    int total = 10 + len + 1;
    int padn = (64 - total % 64) % 64;
    unsigned char head[512];
    memcpy(head, "\x93NUMPY\x01\x00", 8);
    int hl = len + padn + 1;
    head[8] = (unsigned char)(hl & 255);
    head[9] = (unsigned char)(hl >> 8);
    memcpy(head + 10, hdr, (size_t)len);
    memset(head + 10 + len, ' ', (size_t)padn);
    head[10 + len + padn] = '\n';
    const void *parts[2] = { head, x };
    size_t lens[2] = { (size_t)(10 + hl), sizeof(float) * (size_t)n * C * H * W };
    return sk_write_file_atomic(path, parts, lens, 2);
}
