/* Figures through cairo: a figure records its panels and their data, and is
 * drawn only when written, so every axis range covers all the data. One
 * drawing routine serves both formats: an image surface (PNG) and an SVG
 * surface, each written into memory and then in one atomic write.
 *
 * cairo rather than PLplot: PLplot keeps its plotting state in global streams
 * (plinit/plend, a current stream), which a library called from several
 * threads cannot share, exits the process on some errors unless a handler is
 * installed, and writes its cairo output to files rather than to memory;
 * cairo keeps all state in the context, writes PNG and SVG to a callback, and
 * is already a dependency of every desktop. The price is that ticks, legends
 * and colour bars are laid out here. */
#include "skeptic/figure.h"
#include "skeptic/io.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FONT "DejaVu Sans"
#define PI 3.14159265358979323846
#define MAX_PANELS 4096
#define MAX_POINTS (1 << 24)

enum item_kind { IT_LINE, IT_BARS, IT_HEAT, IT_IMAGE };

struct item {
    enum item_kind kind;
    double rgb[3], alpha, width;
    bool dashed, markers;
    char *label;
    int n;                   /* points or bars */
    double *x, *y, *x1, *y1; /* line: x, y; bars: x = x0, x1, y = y0, y1 */
    int nx, ny, levels;      /* heat map: x[nx], y[ny], z = x1[nx ny] */
    bool log_z;
    unsigned char *img; /* image: w x h x 3 in img, w = nx, h = ny */
    char *caption;
};

struct panel {
    double fx0, fy0, fx1, fy1;
    char *title, *xlabel, *ylabel, *zlabel;
    double lim[4];
    bool log_y;
    struct item *items;
    int n_items, cap_items, next_colour;
};

struct sk_figure {
    int w, h;
    char *title;
    struct panel *p;
    int n_p, cap_p, err;
};

static const double PALETTE[8][3] = { { 31, 119, 180 }, { 214, 39, 40 },  { 44, 160, 44 },   { 255, 127, 14 },
                                      { 148, 103, 189 }, { 110, 110, 110 }, { 140, 86, 75 }, { 227, 119, 194 } };

/* ---- building ---- */

static int fail(struct sk_figure *f, int rc)
{
    if (f && !f->err) f->err = rc;
    return rc;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s || !*s) return NULL;
    char *d = sk_strdup(s);
    if (!d) *oom = true;
    return d;
}

struct sk_figure *sk_figure_new(int width, int height, const char *title)
{
    if (width < 64 || width > 8192 || height < 64 || height > 8192) {
        sk_error(SK_EINVAL, "figure: width and height must be 64..8192 pixels (got %d x %d)", width, height);
        return NULL;
    }
    struct sk_figure *f = sk_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->w = width;
    f->h = height;
    bool oom = false;
    f->title = dup_or_null(title, &oom);
    if (oom) {
        sk_free(f);
        return NULL;
    }
    return f;
}

static void item_free(struct item *it)
{
    sk_free(it->label);
    sk_free(it->x);
    sk_free(it->y);
    sk_free(it->x1);
    sk_free(it->y1);
    sk_free(it->img);
    sk_free(it->caption);
}

void sk_figure_free(struct sk_figure *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_p; i++) {
        struct panel *p = &f->p[i];
        for (int k = 0; k < p->n_items; k++) item_free(&p->items[k]);
        sk_free(p->items);
        sk_free(p->title);
        sk_free(p->xlabel);
        sk_free(p->ylabel);
        sk_free(p->zlabel);
    }
    sk_free(f->p);
    sk_free(f->title);
    sk_free(f);
}

int sk_figure_panel(struct sk_figure *f, double x0, double y0, double x1, double y1)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    if (!(x0 >= 0 && x0 < x1 && x1 <= 1 && y0 >= 0 && y0 < y1 && y1 <= 1))
        return fail(f, sk_error(SK_EINVAL, "figure panel: the rectangle must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
                                           " (got x %g..%g, y %g..%g)", x0, x1, y0, y1));
    if (f->n_p >= MAX_PANELS) return fail(f, sk_error(SK_EINVAL, "figure panel: at most %d panels", MAX_PANELS));
    if (f->n_p == f->cap_p) {
        int cap = f->cap_p ? 2 * f->cap_p : 4;
        struct panel *np = sk_calloc((size_t)cap, sizeof *np);
        if (!np) return fail(f, SK_ENOMEM);
        if (f->p) memcpy(np, f->p, sizeof *np * (size_t)f->n_p);
        sk_free(f->p);
        f->p = np;
        f->cap_p = cap;
    }
    struct panel *p = &f->p[f->n_p];
    memset(p, 0, sizeof *p);
    p->fx0 = x0;
    p->fy0 = y0;
    p->fx1 = x1;
    p->fy1 = y1;
    for (int k = 0; k < 4; k++) p->lim[k] = NAN;
    return f->n_p++;
}

static struct panel *current(struct sk_figure *f)
{
    if (f->n_p == 0 && sk_figure_panel(f, 0, 0, 1, 1) < 0) return NULL;
    return &f->p[f->n_p - 1];
}

int sk_figure_axes(struct sk_figure *f, const char *title, const char *xlabel, const char *ylabel)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    struct panel *p = current(f);
    if (!p) return f->err;
    bool oom = false;
    char *t = dup_or_null(title, &oom), *xl = dup_or_null(xlabel, &oom), *yl = dup_or_null(ylabel, &oom);
    if (oom) {
        sk_free(t);
        sk_free(xl);
        sk_free(yl);
        return fail(f, SK_ENOMEM);
    }
    sk_free(p->title);
    sk_free(p->xlabel);
    sk_free(p->ylabel);
    p->title = t;
    p->xlabel = xl;
    p->ylabel = yl;
    return SK_OK;
}

int sk_figure_limits(struct sk_figure *f, double x0, double x1, double y0, double y1)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    struct panel *p = current(f);
    if (!p) return f->err;
    if ((!isnan(x0) && !isfinite(x0)) || (!isnan(x1) && !isfinite(x1)) || (!isnan(y0) && !isfinite(y0)) ||
        (!isnan(y1) && !isfinite(y1)) || (!isnan(x0) && !isnan(x1) && !(x0 < x1)) ||
        (!isnan(y0) && !isnan(y1) && !(y0 < y1)))
        return fail(f, sk_error(SK_EINVAL, "figure limits: each bound finite or NAN, x0 < x1 and y0 < y1 (got x %g..%g,"
                                           " y %g..%g)", x0, x1, y0, y1));
    p->lim[0] = x0;
    p->lim[1] = x1;
    p->lim[2] = y0;
    p->lim[3] = y1;
    return SK_OK;
}

int sk_figure_log_y(struct sk_figure *f, bool on)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    struct panel *p = current(f);
    if (!p) return f->err;
    p->log_y = on;
    return SK_OK;
}

static struct item *new_item(struct sk_figure *f, struct panel *p, enum item_kind kind, const struct sk_figure_style *s)
{
    if (p->n_items == p->cap_items) {
        int cap = p->cap_items ? 2 * p->cap_items : 4;
        struct item *ni = sk_calloc((size_t)cap, sizeof *ni);
        if (!ni) {
            fail(f, SK_ENOMEM);
            return NULL;
        }
        if (p->items) memcpy(ni, p->items, sizeof *ni * (size_t)p->n_items);
        sk_free(p->items);
        p->items = ni;
        p->cap_items = cap;
    }
    struct item *it = &p->items[p->n_items];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    struct sk_figure_style z = { 0 };
    if (!s) s = &z;
    unsigned c = s->colour;
    if (c & 0x1000000u) {
        it->rgb[0] = (c >> 16 & 255) / 255.0;
        it->rgb[1] = (c >> 8 & 255) / 255.0;
        it->rgb[2] = (c & 255) / 255.0;
    } else {
        int k = c >= 1 && c <= 8 ? (int)c - 1 : p->next_colour++ % 8;
        for (int j = 0; j < 3; j++) it->rgb[j] = PALETTE[k][j] / 255.0;
    }
    it->alpha = s->alpha > 0 && s->alpha <= 1 ? s->alpha : 1;
    it->width = s->width > 0 ? s->width : 2;
    it->dashed = s->dashed;
    it->markers = s->markers;
    bool oom = false;
    it->label = dup_or_null(s->label, &oom);
    if (oom) {
        fail(f, SK_ENOMEM);
        return NULL;
    }
    return it;
}

static double *copy_d(const double *src, int n, bool *oom)
{
    double *d = sk_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!d) {
        *oom = true;
        return NULL;
    }
    if (src) memcpy(d, src, sizeof(double) * (size_t)n);
    else memset(d, 0, sizeof(double) * (size_t)n);
    return d;
}

int sk_figure_line(struct sk_figure *f, const double *x, const double *y, int n, const struct sk_figure_style *s)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    if (!x || !y || n < 1 || n > MAX_POINTS)
        return fail(f, sk_error(SK_EINVAL, "figure line: needs x and y of 1..%d points (got %d)", MAX_POINTS, n));
    struct panel *p = current(f);
    struct item *it = p ? new_item(f, p, IT_LINE, s) : NULL;
    if (!it) return f->err;
    bool oom = false;
    it->n = n;
    it->x = copy_d(x, n, &oom);
    it->y = copy_d(y, n, &oom);
    if (oom) {
        item_free(it);
        return fail(f, SK_ENOMEM);
    }
    p->n_items++;
    return SK_OK;
}

int sk_figure_bars(struct sk_figure *f, const double *x0, const double *x1, const double *y0, const double *y1, int n,
                   const struct sk_figure_style *s)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    if (!x0 || !x1 || !y1 || n < 1 || n > MAX_POINTS)
        return fail(f, sk_error(SK_EINVAL, "figure bars: needs x0, x1 and y1 of 1..%d bars (got %d)", MAX_POINTS, n));
    struct panel *p = current(f);
    struct item *it = p ? new_item(f, p, IT_BARS, s) : NULL;
    if (!it) return f->err;
    bool oom = false;
    it->n = n;
    it->x = copy_d(x0, n, &oom);
    it->x1 = copy_d(x1, n, &oom);
    it->y = copy_d(y0, n, &oom);
    it->y1 = copy_d(y1, n, &oom);
    if (oom) {
        item_free(it);
        return fail(f, SK_ENOMEM);
    }
    p->n_items++;
    return SK_OK;
}

int sk_figure_heatmap(struct sk_figure *f, const double *x, int nx, const double *y, int ny, const double *z,
                      bool log_z, int n_levels, const char *zlabel)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    if (!x || !y || !z || nx < 2 || ny < 2 || (long)nx * ny > MAX_POINTS || n_levels < 0 || n_levels > 100)
        return fail(f, sk_error(SK_EINVAL, "figure heat map: needs a grid of at least 2 x 2 points (got %d x %d) and"
                                           " n_levels in 0..100 (got %d)", nx, ny, n_levels));
    for (int i = 1; i < nx; i++)
        if (!(x[i] > x[i - 1])) return fail(f, sk_error(SK_EINVAL, "figure heat map: x must increase (x[%d] = %g after %g)", i, x[i], x[i - 1]));
    for (int j = 1; j < ny; j++)
        if (!(y[j] > y[j - 1])) return fail(f, sk_error(SK_EINVAL, "figure heat map: y must increase (y[%d] = %g after %g)", j, y[j], y[j - 1]));
    struct panel *p = current(f);
    if (!p) return f->err;
    for (int k = 0; k < p->n_items; k++)
        if (p->items[k].kind == IT_HEAT) return fail(f, sk_error(SK_EINVAL, "figure heat map: one heat map per panel"));
    struct item *it = new_item(f, p, IT_HEAT, NULL);
    if (!it) return f->err;
    bool oom = false;
    it->nx = nx;
    it->ny = ny;
    it->log_z = log_z;
    it->levels = n_levels;
    it->x = copy_d(x, nx, &oom);
    it->y = copy_d(y, ny, &oom);
    it->x1 = copy_d(z, nx * ny, &oom);
    char *zl = dup_or_null(zlabel, &oom);
    if (oom) {
        item_free(it);
        sk_free(zl);
        return fail(f, SK_ENOMEM);
    }
    sk_free(p->zlabel);
    p->zlabel = zl;
    p->n_items++;
    return SK_OK;
}

int sk_figure_image(struct sk_figure *f, const unsigned char *rgb, int w, int h, const char *caption,
                    unsigned colour)
{
    if (!f) return sk_error(SK_EINVAL, "figure: NULL figure");
    if (!rgb || w < 1 || h < 1 || w > 8192 || h > 8192)
        return fail(f, sk_error(SK_EINVAL, "figure image: needs pixels and a size of 1..8192 (got %d x %d)", w, h));
    struct panel *p = current(f);
    struct item *it = p ? new_item(f, p, IT_IMAGE, &(struct sk_figure_style){ .colour = colour ? colour : SK_FIGURE_BLACK }) : NULL;
    if (!it) return f->err;
    bool oom = false;
    it->nx = w;
    it->ny = h;
    it->img = sk_malloc((size_t)w * h * 3);
    it->caption = dup_or_null(caption, &oom);
    if (!it->img || oom) {
        item_free(it);
        return fail(f, SK_ENOMEM);
    }
    memcpy(it->img, rgb, (size_t)w * h * 3);
    p->n_items++;
    return SK_OK;
}

/* ---- drawing ---- */

static void font(cairo_t *cr, double size, bool bold)
{
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* Text anchored at (x, y): ha 0 left / 0.5 centre / 1 right of x; va 0 top /
 * 0.5 middle / 1 bottom of the font's box at y; rotated by angle (radians,
 * counter-clockwise) about the anchor. */
static void text(cairo_t *cr, double x, double y, const char *s, double ha, double va, double angle)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    double w = text_width(cr, s), hgt = fe.ascent + fe.descent;
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -angle);
    cairo_move_to(cr, -ha * w, -va * hgt + fe.ascent);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

static double font_height(cairo_t *cr)
{
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    return fe.ascent + fe.descent;
}

/* A step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double tick_step(double span, double want)
{
    double raw = span / (want > 1 ? want : 1), p = pow(10, floor(log10(raw))), q = raw / p;
    return (q < 1.5 ? 1 : q < 3.5 ? 2 : q < 7.5 ? 5 : 10) * p;
}

/* Tick label of value v on an axis of step st (lg: v is log10 of the value). */
static void tick_label(char *buf, size_t cap, double v, double st, bool lg)
{
    if (lg) { /* 10 with a superscript exponent outside 0.01 .. 1000 */
        double e = round(v);
        if (fabs(v - e) < 1e-6 && (e < -2 || e > 3)) {
            static const char *const sup[10] = { "\u2070", "\u00b9", "\u00b2", "\u00b3", "\u2074",
                                                 "\u2075", "\u2076", "\u2077", "\u2078", "\u2079" };
            char digits[16];
            snprintf(digits, sizeof digits, "%d", (int)fabs(e));
            size_t k = (size_t)snprintf(buf, cap, "10%s", e < 0 ? "\u207b" : "");
            for (const char *d = digits; *d && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, "%s", sup[*d - '0']);
        } else { /* whole numbers written out (1000, not 1e+03) */
            double val = pow(10, v);
            if (val >= 1 && val < 1e6) snprintf(buf, cap, "%.0f", val);
            else snprintf(buf, cap, "%.3g", val);
        }
        return;
    }
    if (fabs(v) < 1e-9 * st) v = 0;
    int dec = (int)ceil(-log10(st) - 1e-9);
    if (fabs(v) >= 1e6 || (v != 0 && fabs(v) < 1e-4) || dec > 6) snprintf(buf, cap, "%.3g", v);
    else snprintf(buf, cap, "%.*f", dec > 0 ? dec : 0, v);
    if (buf[0] == '-') { /* a typographic minus */
        memmove(buf + 3, buf + 1, strlen(buf));
        memcpy(buf, "\xe2\x88\x92", 3);
    }
}

struct frame {
    double L, R, T, B;          /* plot area in device units */
    double x0, x1, y0, y1;      /* data range (y in log10 if lg) */
    bool lg;
};

static double fx(const struct frame *fr, double x) { return fr->L + (x - fr->x0) / (fr->x1 - fr->x0) * (fr->R - fr->L); }
static double fy(const struct frame *fr, double y)
{
    if (fr->lg) y = y > 0 ? log10(y) : NAN;
    return fr->B - (y - fr->y0) / (fr->y1 - fr->y0) * (fr->B - fr->T);
}

/* Ticks from lo to hi; returns how many (at most cap). On a log axis (lo,
 * hi in log10) of three decades or more: whole decades; of less: the values
 * 1, 2 and 5 (or 1, 2, 3 and 5, or every digit, while that gives fewer
 * than four) times powers of ten, unless that crowds the axis. */
static int ticks(double lo, double hi, double want, bool lg, double *t, int cap, double *step)
{
    int n = 0;
    if (lg && hi - lo < 3 && hi - lo > 0) {
        static const int sets[3][9] = { { 1, 2, 5 }, { 1, 2, 3, 5 }, { 1, 2, 3, 4, 5, 6, 7, 8, 9 } };
        static const int nset[3] = { 3, 4, 9 };
        for (int s = 0; s < 3; s++) {
            n = 0;
            for (double e = floor(lo); e <= ceil(hi) && n < cap; e++)
                for (int k = 0; k < nset[s] && n < cap; k++) {
                    double v = e + log10(sets[s][k]);
                    if (v >= lo - 1e-9 && v <= hi + 1e-9) t[n++] = v;
                }
            if (n >= 4) break;
        }
        *step = 1;
        if (n <= 2 * want + 1 || hi - lo < 1) return n;
        n = 0; /* too crowded for the axis's length: whole decades */
    }
    double st = tick_step(hi - lo, want);
    if (lg) st = fmax(1, ceil(st));
    *step = st;
    for (double v = ceil(lo / st - 1e-9) * st; v <= hi + 1e-9 * st && n < cap; v += st) t[n++] = v;
    return n;
}

static const double VIRIDIS[9][3] = { { 68, 1, 84 },    { 71, 44, 122 },  { 59, 81, 139 },  { 44, 113, 142 }, { 33, 144, 141 },
                                      { 39, 173, 129 }, { 92, 200, 99 },  { 170, 220, 50 }, { 253, 231, 37 } };

static void viridis(double u, double rgb[3])
{
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double q = u * 8;
    int k = q >= 8 ? 7 : (int)q;
    q -= k;
    for (int j = 0; j < 3; j++) rgb[j] = (VIRIDIS[k][j] * (1 - q) + VIRIDIS[k + 1][j] * q) / 255.0;
}

static double zval(const struct item *it, int i, int j)
{
    double v = it->x1[(size_t)j * it->nx + i];
    return it->log_z ? (v > 0 ? log10(v) : NAN) : v;
}

static void z_range(const struct item *it, double *z0, double *z1)
{
    *z0 = INFINITY;
    *z1 = -INFINITY;
    for (int j = 0; j < it->ny; j++)
        for (int i = 0; i < it->nx; i++) {
            double v = zval(it, i, j);
            if (!isfinite(v)) continue;
            *z0 = fmin(*z0, v);
            *z1 = fmax(*z1, v);
        }
    if (!(*z0 <= *z1)) { *z0 = 0; *z1 = 1; }
    if (*z1 - *z0 < 1e-30) { *z0 -= 0.5; *z1 += 0.5; }
}

static int draw_heat(cairo_t *cr, const struct frame *fr, const struct item *it, double z0, double z1)
{
    int pw = (int)ceil(fr->R - fr->L), ph = (int)ceil(fr->B - fr->T);
    if (pw < 1 || ph < 1) return SK_OK;
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
    if (cairo_surface_status(s)) {
        cairo_surface_destroy(s);
        return sk_error(SK_ENOMEM, "figure: out of memory for a %d x %d heat map", pw, ph);
    }
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    const double *x = it->x, *y = it->y, *z = it->x1;
    int nx = it->nx, ny = it->ny, j = 0;
    for (int py = 0; py < ph; py++) {
        double yv = fr->y1 - (fr->y1 - fr->y0) * (py + 0.5) / ph;
        while (j < ny - 2 && y[j + 1] < yv) j++;
        while (j > 0 && y[j] > yv) j--;
        double ty = fmin(fmax((yv - y[j]) / (y[j + 1] - y[j]), 0), 1);
        uint32_t *row = (uint32_t *)(void *)(data + (size_t)py * stride);
        int i = 0;
        for (int px = 0; px < pw; px++) {
            double xv = fr->x0 + (fr->x1 - fr->x0) * (px + 0.5) / pw;
            while (i < nx - 2 && x[i + 1] < xv) i++;
            double tx = fmin(fmax((xv - x[i]) / (x[i + 1] - x[i]), 0), 1);
            double a = z[(size_t)j * nx + i], b = z[(size_t)j * nx + i + 1], c = z[(size_t)(j + 1) * nx + i],
                   d = z[(size_t)(j + 1) * nx + i + 1];
            double v = (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty;
            if (it->log_z) v = v > 0 ? log10(v) : NAN;
            double rgb[3] = { 200 / 255.0, 200 / 255.0, 200 / 255.0 };
            if (isfinite(v)) viridis((v - z0) / (z1 - z0), rgb);
            row[px] = (uint32_t)lround(rgb[0] * 255) << 16 | (uint32_t)lround(rgb[1] * 255) << 8 |
                      (uint32_t)lround(rgb[2] * 255);
        }
    }
    cairo_surface_mark_dirty(s);
    cairo_save(cr);
    cairo_translate(cr, fr->L, fr->T);
    cairo_scale(cr, (fr->R - fr->L) / pw, (fr->B - fr->T) / ph);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(s);
    /* contours by marching squares over the grid cells (straight segments
     * between the crossings on the cell's edges) */
    if (it->levels > 0) {
        cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
        cairo_set_line_width(cr, 1);
        for (int k = 1; k < it->levels; k++) {
            double lev = z0 + (z1 - z0) * k / it->levels;
            for (int jj = 0; jj + 1 < ny; jj++)
                for (int ii = 0; ii + 1 < nx; ii++) {
                    int ci[4][2] = { { ii, jj }, { ii + 1, jj }, { ii + 1, jj + 1 }, { ii, jj + 1 } };
                    double px[4], py[4];
                    int np = 0;
                    for (int e = 0; e < 4; e++) {
                        int a0 = ci[e][0], b0 = ci[e][1], a1 = ci[(e + 1) % 4][0], b1 = ci[(e + 1) % 4][1];
                        double va = zval(it, a0, b0), vb = zval(it, a1, b1);
                        if (!isfinite(va) || !isfinite(vb) || (va < lev) == (vb < lev)) continue;
                        double t = (lev - va) / (vb - va);
                        px[np] = fx(fr, x[a0] + t * (x[a1] - x[a0]));
                        py[np] = fr->B - ((y[b0] + t * (y[b1] - y[b0])) - fr->y0) / (fr->y1 - fr->y0) * (fr->B - fr->T);
                        np++;
                    }
                    for (int q = 0; q + 1 < np; q += 2) {
                        cairo_move_to(cr, px[q], py[q]);
                        cairo_line_to(cr, px[q + 1], py[q + 1]);
                    }
                }
            cairo_stroke(cr);
        }
    }
    return SK_OK;
}

static void set_rgb(cairo_t *cr, const struct item *it, double alpha)
{
    cairo_set_source_rgba(cr, it->rgb[0], it->rgb[1], it->rgb[2], alpha);
}

static void line_style(cairo_t *cr, const struct item *it)
{
    cairo_set_line_width(cr, it->width);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, it->dashed ? CAIRO_LINE_CAP_BUTT : CAIRO_LINE_CAP_ROUND);
    double d[2] = { 3 * it->width + 2, 2 * it->width + 1 };
    cairo_set_dash(cr, d, it->dashed ? 2 : 0, 0);
}

static bool point_ok(const struct frame *fr, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!fr->lg || y > 0);
}

static void draw_line(cairo_t *cr, const struct frame *fr, const struct item *it)
{
    line_style(cr, it);
    set_rgb(cr, it, it->alpha);
    bool have = false;
    for (int i = 0; i < it->n; i++) {
        if (!point_ok(fr, it->x[i], it->y[i])) {
            have = false;
            continue;
        }
        double X = fx(fr, it->x[i]), Y = fy(fr, it->y[i]);
        if (have) cairo_line_to(cr, X, Y);
        else cairo_move_to(cr, X, Y);
        have = true;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; i < it->n; i++) {
        bool alone = (i == 0 || !point_ok(fr, it->x[i - 1], it->y[i - 1])) &&
                     (i + 1 == it->n || !point_ok(fr, it->x[i + 1], it->y[i + 1]));
        if (!point_ok(fr, it->x[i], it->y[i]) || !(it->markers || alone)) continue;
        cairo_new_sub_path(cr);
        cairo_arc(cr, fx(fr, it->x[i]), fy(fr, it->y[i]), it->width + 1.5, 0, 2 * PI);
    }
    cairo_fill(cr);
}

static void draw_bars(cairo_t *cr, const struct frame *fr, const struct item *it)
{
    for (int i = 0; i < it->n; i++) {
        double a = it->x[i], b = it->x1[i], c = it->y[i], d = it->y1[i];
        if (!isfinite(a) || !isfinite(b) || !isfinite(c) || !isfinite(d)) continue;
        if (fr->lg && (c <= 0 || d <= 0)) {
            if (c <= 0) c = pow(10, fr->y0);
            if (d <= 0) d = pow(10, fr->y0);
        }
        double X0 = fx(fr, a), X1 = fx(fr, b), Y0 = fy(fr, c), Y1 = fy(fr, d);
        cairo_rectangle(cr, fmin(X0, X1), fmin(Y0, Y1), fabs(X1 - X0), fabs(Y1 - Y0));
    }
    set_rgb(cr, it, it->alpha);
    if (it->markers) {
        cairo_fill_preserve(cr);
        set_rgb(cr, it, 1);
        cairo_set_line_width(cr, 1);
        cairo_stroke(cr);
    } else {
        cairo_fill(cr);
    }
}

/* Data range of a chart panel; false if it holds nothing to draw. */
static void data_range(const struct panel *p, double r[4], bool *has_bars)
{
    r[0] = r[2] = INFINITY;
    r[1] = r[3] = -INFINITY;
    *has_bars = false;
    for (int k = 0; k < p->n_items; k++) {
        const struct item *it = &p->items[k];
        if (it->kind == IT_HEAT) {
            r[0] = fmin(r[0], it->x[0]);
            r[1] = fmax(r[1], it->x[it->nx - 1]);
            r[2] = fmin(r[2], it->y[0]);
            r[3] = fmax(r[3], it->y[it->ny - 1]);
            continue;
        }
        for (int i = 0; i < it->n; i++) {
            double xs[2] = { it->x[i], it->kind == IT_BARS ? it->x1[i] : it->x[i] };
            double ys[2] = { it->y[i], it->kind == IT_BARS ? it->y1[i] : it->y[i] };
            for (int q = 0; q < 2; q++) {
                double yv = p->log_y ? (ys[q] > 0 ? log10(ys[q]) : NAN) : ys[q];
                if (!isfinite(xs[q])) continue;
                if (it->kind == IT_LINE && !isfinite(yv)) continue;
                r[0] = fmin(r[0], xs[q]);
                r[1] = fmax(r[1], xs[q]);
                if (isfinite(yv)) {
                    r[2] = fmin(r[2], yv);
                    r[3] = fmax(r[3], yv);
                }
            }
        }
        if (it->kind == IT_BARS) *has_bars = true;
    }
}

/* The corner (0 top right, 1 top left, 2 bottom right, 3 bottom left) where
 * a w x h legend covers the fewest drawn points. */
static int legend_corner(const struct panel *p, const struct frame *fr, double w, double h)
{
    int best = 0;
    double best_score = INFINITY;
    for (int c = 0; c < 4; c++) {
        double x0 = c % 2 == 0 ? fr->R - 8 - w : fr->L + 8, y0 = c < 2 ? fr->T + 8 : fr->B - 8 - h;
        double score = 0;
        for (int k = 0; k < p->n_items; k++) {
            const struct item *it = &p->items[k];
            if (it->kind == IT_LINE) {
                for (int i = 0; i < it->n; i++) {
                    if (!point_ok(fr, it->x[i], it->y[i])) continue;
                    int sub = i + 1 < it->n && point_ok(fr, it->x[i + 1], it->y[i + 1]) ? 16 : 1;
                    for (int s = 0; s < sub; s++) {
                        double t = (double)s / sub;
                        double X = fx(fr, it->x[i]), Y = fy(fr, it->y[i]);
                        if (sub > 1) {
                            X += t * (fx(fr, it->x[i + 1]) - X);
                            Y += t * (fy(fr, it->y[i + 1]) - Y);
                        }
                        score += X >= x0 && X <= x0 + w && Y >= y0 && Y <= y0 + h;
                    }
                }
            } else if (it->kind == IT_BARS) {
                for (int i = 0; i < it->n; i++) {
                    double X0 = fx(fr, it->x[i]), X1 = fx(fr, it->x1[i]), Y0 = fy(fr, it->y[i] > 0 || !fr->lg ? it->y[i] : pow(10, fr->y0)),
                           Y1 = fy(fr, it->y1[i]);
                    if (!isfinite(X0) || !isfinite(X1) || !isfinite(Y0) || !isfinite(Y1)) continue;
                    double ox = fmin(fmax(X0, X1), x0 + w) - fmax(fmin(X0, X1), x0);
                    double oy = fmin(fmax(Y0, Y1), y0 + h) - fmax(fmin(Y0, Y1), y0);
                    if (ox > 0 && oy > 0) score += ox * oy / 20;
                }
            }
        }
        if (score < best_score - 1e-9) {
            best_score = score;
            best = c;
        }
    }
    return best;
}

static void draw_legend(cairo_t *cr, const struct panel *p, const struct frame *fr)
{
    int n = 0;
    double tw = 0;
    font(cr, 11, false);
    for (int k = 0; k < p->n_items; k++)
        if (p->items[k].label) {
            n++;
            tw = fmax(tw, text_width(cr, p->items[k].label));
        }
    if (!n) return;
    double row = 17, w = 8 + 26 + 6 + tw + 8, h = 6 + n * row + 2;
    int c = legend_corner(p, fr, w, h);
    double x0 = c % 2 == 0 ? fr->R - 8 - w : fr->L + 8, y0 = c < 2 ? fr->T + 8 : fr->B - 8 - h;
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, w, h);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.88);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    int r = 0;
    for (int k = 0; k < p->n_items; k++) {
        const struct item *it = &p->items[k];
        if (!it->label) continue;
        double yc = y0 + 6 + r * row + row / 2;
        if (it->kind == IT_BARS) {
            cairo_rectangle(cr, x0 + 8, yc - 5, 26, 10);
            set_rgb(cr, it, it->alpha);
            cairo_fill(cr);
        } else {
            line_style(cr, it);
            set_rgb(cr, it, it->alpha);
            cairo_move_to(cr, x0 + 8, yc);
            cairo_line_to(cr, x0 + 34, yc);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
            if (it->markers) {
                cairo_arc(cr, x0 + 21, yc, it->width + 1.5, 0, 2 * PI);
                cairo_fill(cr);
            }
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, x0 + 40, yc, it->label, 0, 0.5, 0);
        r++;
    }
}

#define MAX_TICKS 64

static int draw_chart(cairo_t *cr, const struct panel *p, double X0, double Y0, double X1, double Y1)
{
    double r[4];
    bool has_bars;
    data_range(p, r, &has_bars);
    const struct item *heat = NULL;
    for (int k = 0; k < p->n_items; k++)
        if (p->items[k].kind == IT_HEAT) heat = &p->items[k];
    if (!(r[0] <= r[1])) { r[0] = 0; r[1] = 1; }
    if (!(r[2] <= r[3])) { r[2] = 0; r[3] = 1; }
    if (has_bars && !p->log_y) {
        r[2] = fmin(r[2], 0);
        r[3] = fmax(r[3], 0);
    }
    if (r[1] - r[0] < 1e-30) { r[0] -= 0.5; r[1] += 0.5; }
    if (r[3] - r[2] < 1e-30) { r[2] -= 0.5; r[3] += 0.5; }
    if (!heat) { /* room above and below the data, none below a bar's 0 */
        double pad = 0.05 * (r[3] - r[2]);
        if (!(has_bars && r[2] == 0)) r[2] -= pad;
        r[3] += pad;
    }
    struct frame fr = { .lg = p->log_y };
    fr.x0 = isnan(p->lim[0]) ? r[0] : p->lim[0];
    fr.x1 = isnan(p->lim[1]) ? r[1] : p->lim[1];
    double ly0 = p->log_y && p->lim[2] > 0 ? log10(p->lim[2]) : p->lim[2], ly1 = p->log_y && p->lim[3] > 0 ? log10(p->lim[3]) : p->lim[3];
    fr.y0 = isnan(p->lim[2]) || (p->log_y && !(p->lim[2] > 0)) ? r[2] : ly0;
    fr.y1 = isnan(p->lim[3]) || (p->log_y && !(p->lim[3] > 0)) ? r[3] : ly1;
    if (!(fr.x0 < fr.x1)) fr.x1 = fr.x0 + 1;
    if (!(fr.y0 < fr.y1)) fr.y1 = fr.y0 + 1;

    /* margins from the text they hold */
    double yt[MAX_TICKS], xt[MAX_TICKS], zt[MAX_TICKS], yst, xst, zst = 1, z0 = 0, z1 = 1;
    char buf[48];
    double want_y = fmax(2, (Y1 - Y0) / 60);
    int nyt = ticks(fr.y0, fr.y1, want_y, fr.lg, yt, MAX_TICKS, &yst);
    font(cr, 11, false);
    double th = font_height(cr), ytw = 0, ztw = 0;
    for (int i = 0; i < nyt; i++) {
        tick_label(buf, sizeof buf, yt[i], yst, fr.lg);
        ytw = fmax(ytw, text_width(cr, buf));
    }
    int nzt = 0;
    if (heat) {
        z_range(heat, &z0, &z1);
        nzt = ticks(z0, z1, fmax(2, (Y1 - Y0) / 60), heat->log_z, zt, MAX_TICKS, &zst);
        for (int i = 0; i < nzt; i++) {
            tick_label(buf, sizeof buf, zt[i], zst, heat->log_z);
            ztw = fmax(ztw, text_width(cr, buf));
        }
    }
    font(cr, 12, false);
    double lh = font_height(cr);
    fr.L = X0 + 8 + (p->ylabel ? lh + 6 : 0) + ytw + 8;
    fr.R = X1 - 14 - (heat ? 12 + 14 + 4 + ztw + (p->zlabel ? 6 + lh : 0) + 6 : 0);
    fr.T = Y0 + (p->title ? 8 + 13 * 1.3 + 6 : 10);
    fr.B = Y1 - 6 - th - 6 - (p->xlabel ? lh + 6 : 0) - 2;
    if (fr.R - fr.L < 20 || fr.B - fr.T < 20) return sk_error(SK_EINVAL, "figure: a panel of %.0f x %.0f pixels is too small for its axes", X1 - X0, Y1 - Y0);
    int nxt = ticks(fr.x0, fr.x1, fmax(2, (fr.R - fr.L) / 95), false, xt, MAX_TICKS, &xst);

    /* grid, data (clipped to the plot area), frame, ticks, labels */
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    if (!heat) {
        for (int i = 0; i < nxt; i++) {
            double X = round(fx(&fr, xt[i])) + 0.5;
            cairo_move_to(cr, X, fr.T);
            cairo_line_to(cr, X, fr.B);
        }
        for (int i = 0; i < nyt; i++) {
            double Y = round(fr.B - (yt[i] - fr.y0) / (fr.y1 - fr.y0) * (fr.B - fr.T)) + 0.5;
            cairo_move_to(cr, fr.L, Y);
            cairo_line_to(cr, fr.R, Y);
        }
        cairo_stroke(cr);
    }
    cairo_save(cr);
    cairo_rectangle(cr, fr.L, fr.T, fr.R - fr.L, fr.B - fr.T);
    cairo_clip(cr);
    int rc = SK_OK;
    for (int k = 0; k < p->n_items && !rc; k++) {
        const struct item *it = &p->items[k];
        if (it->kind == IT_HEAT) rc = draw_heat(cr, &fr, it, z0, z1);
        else if (it->kind == IT_LINE) draw_line(cr, &fr, it);
        else if (it->kind == IT_BARS) draw_bars(cr, &fr, it);
    }
    cairo_restore(cr);
    if (rc) return rc;
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(fr.L) + 0.5, round(fr.T) + 0.5, round(fr.R) - round(fr.L), round(fr.B) - round(fr.T));
    cairo_stroke(cr);
    font(cr, 11, false);
    for (int i = 0; i < nxt; i++) {
        double X = round(fx(&fr, xt[i])) + 0.5;
        cairo_move_to(cr, X, round(fr.B) + 0.5);
        cairo_line_to(cr, X, round(fr.B) + 5);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, xt[i], xst, false);
        text(cr, X, fr.B + 7, buf, 0.5, 0, 0);
    }
    for (int i = 0; i < nyt; i++) {
        double Y = round(fr.B - (yt[i] - fr.y0) / (fr.y1 - fr.y0) * (fr.B - fr.T)) + 0.5;
        cairo_move_to(cr, round(fr.L) + 0.5, Y);
        cairo_line_to(cr, round(fr.L) - 4, Y);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, yt[i], yst, fr.lg);
        text(cr, fr.L - 7, Y, buf, 1, 0.5, 0);
    }
    font(cr, 12, false);
    if (p->xlabel) text(cr, (fr.L + fr.R) / 2, fr.B + 6 + th + 6, p->xlabel, 0.5, 0, 0);
    if (p->ylabel) text(cr, X0 + 8, (fr.T + fr.B) / 2, p->ylabel, 0.5, 0, PI / 2);
    if (p->title) {
        font(cr, 13, true);
        text(cr, (fr.L + fr.R) / 2, Y0 + 8, p->title, 0.5, 0, 0);
    }
    draw_legend(cr, p, &fr);

    if (heat) { /* the colour bar: a vertical gradient with ticks in z's units */
        double cx0 = fr.R + 12, cx1 = cx0 + 14;
        cairo_pattern_t *g = cairo_pattern_create_linear(0, fr.B, 0, fr.T);
        for (int k = 0; k < 9; k++)
            cairo_pattern_add_color_stop_rgb(g, k / 8.0, VIRIDIS[k][0] / 255, VIRIDIS[k][1] / 255, VIRIDIS[k][2] / 255);
        cairo_rectangle(cr, cx0, fr.T, cx1 - cx0, fr.B - fr.T);
        cairo_set_source(cr, g);
        cairo_fill(cr);
        cairo_pattern_destroy(g);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_rectangle(cr, round(cx0) + 0.5, round(fr.T) + 0.5, round(cx1 - cx0), round(fr.B) - round(fr.T));
        cairo_stroke(cr);
        font(cr, 11, false);
        for (int i = 0; i < nzt; i++) {
            double Y = round(fr.B - (zt[i] - z0) / (z1 - z0) * (fr.B - fr.T)) + 0.5;
            cairo_move_to(cr, cx1, Y);
            cairo_line_to(cr, cx1 + 4, Y);
            cairo_stroke(cr);
            tick_label(buf, sizeof buf, zt[i], zst, heat->log_z);
            text(cr, cx1 + 6, Y, buf, 0, 0.5, 0);
        }
        if (p->zlabel) {
            font(cr, 12, false);
            text(cr, cx1 + 6 + ztw + 6, (fr.T + fr.B) / 2, p->zlabel, 0.5, 0, PI / 2);
        }
    }
    return SK_OK;
}

static int draw_image(cairo_t *cr, const struct panel *p, double X0, double Y0, double X1, double Y1)
{
    double top = Y0 + 2, bottom = Y1 - 2;
    if (p->title) {
        font(cr, 12, true);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, (X0 + X1) / 2, top, p->title, 0.5, 0, 0);
        top += font_height(cr) + 4;
    }
    for (int k = 0; k < p->n_items; k++) {
        const struct item *it = &p->items[k];
        if (it->kind != IT_IMAGE) continue;
        double fsz = 12, capw = X1 - X0 - 4;
        if (it->caption) { /* shrink a long caption to the panel's width, down to 8 px */
            font(cr, fsz, false);
            double tw = text_width(cr, it->caption);
            if (tw > capw) fsz = fmax(8, fsz * capw / tw);
            font(cr, fsz, false);
        }
        double cap_h = it->caption ? font_height(cr) + 4 : 0;
        double aw = X1 - X0 - 4, ah = bottom - top - cap_h;
        if (aw < 1 || ah < 1) return sk_error(SK_EINVAL, "figure: an image panel of %.0f x %.0f pixels is too small", X1 - X0, Y1 - Y0);
        double scale = fmin(aw / it->nx, ah / it->ny);
        /* magnified here by a whole factor so that every viewer shows sharp
         * pixels (an SVG viewer would smooth a small embedded image) */
        int mag = scale >= 1 ? (int)floor(scale) : 1;
        if (mag > 16) mag = 16;
        int sw = it->nx * mag, sh = it->ny * mag;
        cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, sw, sh);
        if (cairo_surface_status(s)) {
            cairo_surface_destroy(s);
            return sk_error(SK_ENOMEM, "figure: out of memory for a %d x %d image", sw, sh);
        }
        unsigned char *data = cairo_image_surface_get_data(s);
        int stride = cairo_image_surface_get_stride(s);
        for (int yy = 0; yy < sh; yy++) {
            uint32_t *row = (uint32_t *)(void *)(data + (size_t)yy * stride);
            const unsigned char *src = it->img + (size_t)(yy / mag) * it->nx * 3;
            for (int xx = 0; xx < sw; xx++) {
                const unsigned char *q = src + (size_t)(xx / mag) * 3;
                row[xx] = (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
            }
        }
        cairo_surface_mark_dirty(s);
        double dw = it->nx * scale, dh = it->ny * scale, ix = (X0 + X1 - dw) / 2, iy = top + (ah - dh) / 2;
        cairo_save(cr);
        cairo_translate(cr, ix, iy);
        cairo_scale(cr, dw / sw, dh / sh);
        cairo_set_source_surface(cr, s, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_paint(cr);
        cairo_restore(cr);
        cairo_surface_destroy(s);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, 1);
        cairo_rectangle(cr, round(ix) - 0.5, round(iy) - 0.5, round(dw) + 1, round(dh) + 1);
        cairo_stroke(cr);
        if (it->caption) {
            cairo_set_source_rgb(cr, it->rgb[0], it->rgb[1], it->rgb[2]);
            text(cr, (X0 + X1) / 2, iy + dh + 3, it->caption, 0.5, 0, 0);
        }
    }
    return SK_OK;
}

static int render(const struct sk_figure *f, cairo_t *cr)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double top = 0;
    if (f->title) {
        font(cr, 15, true);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, f->w / 2.0, 10, f->title, 0.5, 0, 0);
        top = 10 + font_height(cr) + 4;
    }
    double H = f->h - top;
    for (int i = 0; i < f->n_p; i++) {
        const struct panel *p = &f->p[i];
        double X0 = p->fx0 * f->w, X1 = p->fx1 * f->w, Y0 = top + p->fy0 * H, Y1 = top + p->fy1 * H;
        bool image = false;
        for (int k = 0; k < p->n_items; k++) image |= p->items[k].kind == IT_IMAGE;
        cairo_save(cr);
        int rc = image ? draw_image(cr, p, X0, Y0, X1, Y1) : draw_chart(cr, p, X0, Y0, X1, Y1);
        cairo_restore(cr);
        if (rc) return rc;
    }
    cairo_status_t st = cairo_status(cr);
    if (st == CAIRO_STATUS_NO_MEMORY) return sk_error(SK_ENOMEM, "figure: cairo ran out of memory");
    if (st) return sk_error(SK_EIO, "figure: cairo: %s", cairo_status_to_string(st));
    return SK_OK;
}

/* ---- output ---- */

struct membuf {
    unsigned char *d;
    size_t n, cap;
    bool oom;
};

static bool mem_put(struct membuf *b, const void *data, size_t len)
{
    if (b->oom) return false;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->n + len + 1) cap *= 2;
        unsigned char *nd = sk_malloc(cap);
        if (!nd) {
            b->oom = true;
            return false;
        }
        if (b->d) memcpy(nd, b->d, b->n);
        sk_free(b->d);
        b->d = nd;
        b->cap = cap;
    }
    memcpy(b->d + b->n, data, len);
    b->n += len;
    b->d[b->n] = 0;
    return true;
}

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len)
{
    return mem_put(closure, data, len) ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_NO_MEMORY;
}

static bool put_escaped(struct membuf *b, const char *s)
{
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (!(e ? mem_put(b, e, strlen(e)) : mem_put(b, s, 1))) return false;
    }
    return true;
}

/* The <title> and <desc> elements: the figure's title, then one line per
 * piece of text on it (panel titles, axis labels, legend entries, captions). */
static bool svg_meta(struct membuf *b, const struct sk_figure *f)
{
    const char *t = f->title;
    for (int i = 0; !t && i < f->n_p; i++) t = f->p[i].title;
    bool ok = mem_put(b, "\n<title>", 8) && put_escaped(b, t ? t : "figure") && mem_put(b, "</title>\n<desc>", 15);
    if (f->title) ok = ok && put_escaped(b, f->title) && mem_put(b, "\n", 1);
    for (int i = 0; ok && i < f->n_p; i++) {
        const struct panel *p = &f->p[i];
        const char *lines[4] = { p->title, p->xlabel, p->ylabel, p->zlabel };
        for (int k = 0; k < 4; k++)
            if (lines[k]) ok = ok && put_escaped(b, lines[k]) && mem_put(b, "\n", 1);
        for (int k = 0; k < p->n_items; k++) {
            const char *s = p->items[k].label ? p->items[k].label : p->items[k].caption;
            if (s) ok = ok && put_escaped(b, s) && mem_put(b, "\n", 1);
        }
    }
    return ok && mem_put(b, "</desc>", 7);
}

int sk_figure_encode(const struct sk_figure *f, enum sk_figure_format fmt, unsigned char **out, size_t *len)
{
    if (!f || !out || !len) return sk_error(SK_EINVAL, "figure encode: needs a figure and out, len");
    *out = NULL;
    *len = 0;
    if (f->err) return sk_error(f->err, "figure: an earlier call failed (%s)", sk_status_name(f->err));
    if (fmt != SK_FIGURE_PNG && fmt != SK_FIGURE_SVG) return sk_error(SK_EINVAL, "figure encode: format %d is neither PNG nor SVG", (int)fmt);
    struct membuf b = { 0 };
    cairo_surface_t *s = fmt == SK_FIGURE_PNG ? cairo_image_surface_create(CAIRO_FORMAT_RGB24, f->w, f->h)
                                              : cairo_svg_surface_create_for_stream(mem_write, &b, f->w, f->h);
    if (fmt == SK_FIGURE_SVG) cairo_svg_surface_set_document_unit(s, CAIRO_SVG_UNIT_PX);
    cairo_t *cr = cairo_create(s);
    int rc = render(f, cr);
    cairo_destroy(cr);
    cairo_status_t st = CAIRO_STATUS_SUCCESS;
    if (!rc && fmt == SK_FIGURE_PNG) st = cairo_surface_write_to_png_stream(s, mem_write, &b);
    cairo_surface_finish(s);
    if (!st) st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (!rc && (b.oom || st == CAIRO_STATUS_NO_MEMORY)) rc = sk_error(SK_ENOMEM, "figure: out of memory while encoding");
    else if (!rc && st) rc = sk_error(SK_EIO, "figure: cairo could not encode: %s", cairo_status_to_string(st));
    if (!rc && fmt == SK_FIGURE_SVG) { /* the metadata goes right after the opening <svg ...> tag */
        char *open = strstr((char *)b.d, "<svg");
        char *end = open ? strchr(open, '>') : NULL;
        struct membuf m = { 0 };
        if (!end) rc = sk_error(SK_EIO, "figure: cairo's SVG has no <svg> element");
        else if (!mem_put(&m, b.d, (size_t)(end + 1 - (char *)b.d)) || !svg_meta(&m, f) ||
                 !mem_put(&m, end + 1, b.n - (size_t)(end + 1 - (char *)b.d)))
            rc = sk_error(SK_ENOMEM, "figure: out of memory while encoding");
        sk_free(b.d);
        b = m;
    }
    if (rc) {
        sk_free(b.d);
        return rc;
    }
    *out = b.d;
    *len = b.n;
    return SK_OK;
}

int sk_figure_format_of(const char *path, enum sk_figure_format *fmt)
{
    size_t n = path ? strlen(path) : 0;
    char ext[5] = { 0 };
    for (size_t i = 0; n > 4 && i < 4; i++) {
        char c = path[n - 4 + i];
        ext[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    if (!strcmp(ext, ".png")) *fmt = SK_FIGURE_PNG;
    else if (!strcmp(ext, ".svg")) *fmt = SK_FIGURE_SVG;
    else return sk_error(SK_EINVAL, "%s: a figure's file name must end in .png or .svg", path ? path : "(null)");
    return SK_OK;
}

int sk_figure_write(const struct sk_figure *f, const char *path)
{
    enum sk_figure_format fmt;
    int rc = sk_figure_format_of(path, &fmt);
    if (rc) return rc;
    unsigned char *d;
    size_t n;
    rc = sk_figure_encode(f, fmt, &d, &n);
    if (rc) {
        char why[256];
        snprintf(why, sizeof why, "%s", sk_last_error());
        return sk_error(rc, "%s: %s", path, why);
    }
    const void *parts[1] = { d };
    size_t lens[1] = { n };
    rc = sk_write_file_atomic(path, parts, lens, 1);
    sk_free(d);
    return rc;
}
