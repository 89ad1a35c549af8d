/* skeptic/figure.h — figures drawn with cairo and written as PNG or SVG.
 *
 * A figure is a canvas of width x height pixels (SVG: the same size in CSS
 * pixels) with an optional title across the top, holding one or more panels.
 * A panel is either a chart (axes with numbered ticks, grid lines, axis
 * labels, a panel title, a legend of the labelled series, and for a heat map
 * a colour bar) or an image with a caption. Data are copied when they are
 * added, so the caller's arrays may be freed at once; nothing is drawn until
 * the figure is written or encoded, so the axis ranges cover everything
 * added. The format follows the path's extension: .png (8-bit RGB) or .svg
 * (text drawn as glyph outlines, so it looks the same everywhere; the title
 * and every piece of text on the figure are also in the SVG's <title> and
 * <desc> elements, for search and screen readers).
 *
 * Text is UTF-8 and drawn in DejaVu Sans (fontconfig's sans-serif fallback if
 * it is absent), so "T-shirt/top → Shirt" and "ε" print as written.
 *
 * A figure has no global state: figures may be built and written on several
 * threads at once (one figure per thread).
 *
 * Errors: each call returns SK_OK or a status with sk_last_error() naming the
 * field; the first error also sticks to the figure, so that a caller may add
 * everything and check only the final sk_figure_write / sk_figure_encode.
 *
 * Example: two series with a legend, written as PNG and SVG, and as PNG
 * bytes in memory (e.g. to embed in HTML as base64).
 *
 *     struct sk_figure *f = sk_figure_new(640, 480, "Robust accuracy");
 *     sk_figure_axes(f, NULL, "ε (L∞)", "accuracy");
 *     sk_figure_limits(f, NAN, NAN, 0, 1);
 *     sk_figure_line(f, eps, acc_fgsm, n, &(struct sk_figure_style){ .label = "FGSM", .markers = true });
 *     sk_figure_line(f, eps, acc_pgd, n, &(struct sk_figure_style){ .label = "PGD", .markers = true });
 *     int rc = sk_figure_write(f, "eps.png");
 *     if (!rc) rc = sk_figure_write(f, "eps.svg");
 *     unsigned char *png; size_t len;
 *     if (!rc) rc = sk_figure_encode(f, SK_FIGURE_PNG, &png, &len);   // sk_free(png) afterwards
 *     sk_figure_free(f);
 */
#ifndef SKEPTIC_FIGURE_H
#define SKEPTIC_FIGURE_H

#include "skeptic/core.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sk_figure_format { SK_FIGURE_PNG = 0, SK_FIGURE_SVG = 1 };

/* A colour: 0 = the panel's next palette colour, 1..8 = palette colour k
 * (blue, red, green, orange, purple, grey, brown, pink), or an explicit
 * SK_FIGURE_RGB(r, g, b) with components 0..255. */
#define SK_FIGURE_RGB(r, g, b) (0x1000000u | ((unsigned)(r) & 255u) << 16 | ((unsigned)(g) & 255u) << 8 | ((unsigned)(b) & 255u))
#define SK_FIGURE_BLACK SK_FIGURE_RGB(0, 0, 0)
#define SK_FIGURE_GREY SK_FIGURE_RGB(110, 110, 110)

/* How a series is drawn. A zeroed struct (or NULL) is a solid 2-pixel line
 * in the next palette colour, opaque, without markers, not in the legend. */
struct sk_figure_style {
    unsigned colour;   /* see SK_FIGURE_RGB */
    float alpha;       /* opacity in (0, 1]; 0 means 1 */
    float width;       /* line width in pixels; 0 means 2 */
    bool dashed;
    bool markers;      /* a dot at every point of a line */
    const char *label; /* legend entry (copied); NULL: not in the legend */
};

struct sk_figure;

/* A figure of width x height pixels (each 64..8192), title (copied; NULL or
 * "" for none). NULL with sk_last_error() on bad sizes or out of memory. */
struct sk_figure *sk_figure_new(int width, int height, const char *title);
void sk_figure_free(struct sk_figure *f); /* NULL ok */

/* Add a panel occupying the rectangle [x0, x1] x [y0, y1] of the area below
 * the figure's title, in fractions of it (0,0 top left; 0 <= x0 < x1 <= 1,
 * the same for y) and make it current. Returns its index (>= 0) or a
 * negative status. Drawing calls before the first panel create one panel
 * covering the whole area. */
int sk_figure_panel(struct sk_figure *f, double x0, double y0, double x1, double y1);
/* The current panel's title and axis labels (each copied; NULL: none). */
int sk_figure_axes(struct sk_figure *f, const char *title, const char *xlabel, const char *ylabel);
/* Fixed axis ranges of the current panel; NAN for any bound leaves it to
 * the data (padded a little, and to whole tick steps on the y axis). */
int sk_figure_limits(struct sk_figure *f, double x0, double x1, double y0, double y1);
/* Logarithmic y axis on the current panel: ticks at powers of ten; values
 * <= 0 are not drawn (they break a line). */
int sk_figure_log_y(struct sk_figure *f, bool on);

/* A line through (x[i], y[i]), i < n (n >= 1; one point is drawn as a
 * marker); a non-finite point breaks the line. */
int sk_figure_line(struct sk_figure *f, const double *x, const double *y, int n, const struct sk_figure_style *s);
/* n rectangles [x0[i], x1[i]] x [y0[i], y1[i]] (y0 NULL: from 0), e.g. the
 * bars of a histogram; the style's width and dashes are ignored, markers
 * mean an outline. Rectangles with a non-finite corner are skipped. */
int sk_figure_bars(struct sk_figure *f, const double *x0, const double *x1, const double *y0, const double *y1, int n,
                   const struct sk_figure_style *s);
/* A heat map of z on the grid x[nx] by y[ny] (both increasing, nx, ny >= 2;
 * z[j * nx + i] at (x[i], y[j]), bilinear between grid points) on a viridis
 * ramp over z's finite range (log10 of z with log_z; values <= 0 then grey),
 * white contour lines between n_levels equal bands (0..100; 0: none), and a
 * colour bar at the panel's right labelled zlabel. One heat map per panel. */
int sk_figure_heatmap(struct sk_figure *f, const double *x, int nx, const double *y, int ny, const double *z,
                      bool log_z, int n_levels, const char *zlabel);
/* An 8-bit RGB image (h rows of w pixels, 3 bytes each) filling the current
 * panel at its aspect ratio, magnified without smoothing, with a caption
 * under it (NULL: none) in colour (0: black). The panel draws no axes. */
int sk_figure_image(struct sk_figure *f, const unsigned char *rgb, int w, int h, const char *caption,
                    unsigned colour);

/* Render and write atomically (sk_write_file_atomic): PNG if path ends in
 * .png, SVG if in .svg (either case); SK_EINVAL naming the path for another
 * extension. Returns the figure's first error if an earlier call failed. */
int sk_figure_write(const struct sk_figure *f, const char *path);
/* Render into memory: *out (freed by the caller with sk_free) holds *len
 * bytes of a PNG or SVG file. */
int sk_figure_encode(const struct sk_figure *f, enum sk_figure_format fmt, unsigned char **out, size_t *len);
/* The format a path's extension asks for; SK_EINVAL naming the path if it is
 * neither .png nor .svg. */
int sk_figure_format_of(const char *path, enum sk_figure_format *fmt);

#ifdef __cplusplus
}
#endif
#endif
