/* Pictures and arrays of attack results: the accuracy-versus-eps chart and
 * the grid of originals / perturbations / adversarial examples (figures
 * through skeptic/figure.h, PNG or SVG by the extension), and .npy output. */
#include "attack/internal.h"
#include "skeptic/figure.h"
#include "skeptic/io.h"

#include <stdio.h>

int sk_attack_plot_curve(const char *path, const char *title, const float *eps, int n_eps, const double *acc,
                         int n_series, const char *const *names)
{
    if (!path || !eps || !acc || n_eps < 1 || n_series < 1 || n_series > 8)
        return sk_error(SK_EINVAL, "sk_attack_plot_curve: needs a path, eps[n_eps >= 1] and 1..8 series (got %d)",
                        n_series);
    double *e = sk_malloc(sizeof(double) * (size_t)n_eps);
    if (!e) return SK_ENOMEM;
    double emax = 0;
    for (int i = 0; i < n_eps; i++) {
        e[i] = eps[i];
        if (isfinite(e[i])) emax = fmax(emax, e[i]);
    }
    struct sk_figure *f = sk_figure_new(600, 440, title);
    int rc = f ? SK_OK : SK_ENOMEM;
    if (!rc) {
        sk_figure_axes(f, NULL, "\u03b5 (perturbation budget)", "accuracy");
        sk_figure_limits(f, 0, emax > 0 ? emax * 1.02 : 1, 0, 1.02);
        for (int s = 0; s < n_series; s++)
            sk_figure_line(f, e, acc + (size_t)s * n_eps, n_eps,
                           &(struct sk_figure_style){ .colour = (unsigned)s + 1, .markers = true,
                                                      .label = names ? names[s] : NULL });
        rc = sk_figure_write(f, path);
    }
    sk_figure_free(f);
    sk_free(e);
    return rc;
}

/* Class k's name, else its number (buf holds it). */
static const char *class_label(int k, const char *const *names, int n_names, char *buf, size_t cap)
{
    if (names && k >= 0 && k < n_names && names[k]) return names[k];
    snprintf(buf, cap, "%d", k);
    return buf;
}

int sk_attack_plot_grid(const char *path, const float *x, const float *x_adv, const int *y, const int *pred,
                        const int *idx, int n_show, int C, int H, int W, const char *const *class_names, int n_classes)
{
    if (!path || !x || !x_adv || !y || !pred || n_show < 1 || n_show > 256 || H < 1 || W < 1 || H > 1024 || W > 1024 ||
        (C != 1 && C != 3))
        return sk_error(SK_EINVAL, "sk_attack_plot_grid: needs x, x_adv, y, pred, 1..256 rows and images of 1 or 3"
                                   " channels (got %d rows, %d x %d x %d)", n_show, C, H, W);
    /* rows of 3 cells: image magnified to about 112 pixels, a caption under it */
    int cell_w = 200, cell_h = 152, title_h = 34, head_h = 22;
    double area = head_h + (double)n_show * cell_h;
    struct sk_figure *f = sk_figure_new(3 * cell_w, title_h + (int)area, "Adversarial examples");
    if (!f) return SK_ENOMEM;
    unsigned char *rgb = sk_malloc((size_t)H * W * 3);
    if (!rgb) {
        sk_figure_free(f);
        return SK_ENOMEM;
    }
    int D = C * H * W;
    for (int r = 0; r < n_show; r++) {
        int i = idx ? idx[r] : r;
        const float *xo = x + (size_t)i * D, *xa = x_adv + (size_t)i * D;
        float dmax = 0;
        for (int j = 0; j < D; j++) dmax = fmaxf(dmax, fabsf(xa[j] - xo[j]));
        char tb[16], pb[16], cap[160];
        const char *tn = class_label(y[i], class_names, n_classes, tb, sizeof tb);
        const char *pn = class_label(pred[i], class_names, n_classes, pb, sizeof pb);
        for (int col = 0; col < 3; col++) {
            /* the perturbation at full grey range: 0.5 + 0.5 delta / max|delta| */
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++)
                    for (int k = 0; k < 3; k++) {
                        size_t q = ((size_t)(C == 3 ? k : 0) * H + h) * W + w;
                        float v = col == 0 ? xo[q] : col == 2 ? xa[q] : 0.5f + 0.5f * (xa[q] - xo[q]) / fmaxf(dmax, 1e-12f);
                        rgb[((size_t)h * W + w) * 3 + k] = (unsigned char)lroundf(fminf(fmaxf(v, 0), 1) * 255);
                    }
            unsigned colour = 0;
            if (col == 0) {
                snprintf(cap, sizeof cap, "true: %s", tn);
            } else if (col == 1) {
                if (dmax > 0) snprintf(cap, sizeof cap, "max |\u03b4| %.3g, shown \u00d7%.3g", dmax, 0.5 / dmax);
                else snprintf(cap, sizeof cap, "no change");
            } else {
                snprintf(cap, sizeof cap, "%s \u2192 %s", tn, pn);
                colour = pred[i] != y[i] ? SK_FIGURE_RGB(214, 39, 40) : 0;
            }
            /* the first row also holds the column headings */
            sk_figure_panel(f, col / 3.0, r ? (head_h + r * cell_h) / area : 0, (col + 1) / 3.0,
                            (head_h + (r + 1) * cell_h) / area);
            if (r == 0)
                sk_figure_axes(f, col == 0 ? "original" : col == 1 ? "perturbation (magnified)" : "adversarial", NULL,
                               NULL);
            sk_figure_image(f, rgb, W, H, cap, colour);
        }
    }
    sk_free(rgb);
    int rc = sk_figure_write(f, path);
    sk_figure_free(f);
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
