/* The metrics' figures (reliability diagram, histograms, line charts, heat
 * maps) as thin users of the figure primitives (skeptic/figure.h); the file
 * name's extension picks PNG or SVG. */
#include "skeptic/figure.h"
#include "skeptic/metrics.h"

#include <math.h>
#include <stdio.h>

/* Write f to path and free it; the figure's first error if any call failed. */
static int finish(struct sk_figure *f, const char *path)
{
    int rc = sk_figure_write(f, path);
    sk_figure_free(f);
    return rc;
}

int sk_plot_reliability(const char *path, const struct sk_reliability *rel)
{
    if (!path || !rel) return sk_error(SK_EINVAL, "sk_plot_reliability: needs a path and a reliability table");
    if (rel->n_bins < 1 || rel->n_bins > SK_METRIC_MAX_BINS)
        return sk_error(SK_EINVAL, "%s: the reliability table has %d bins (1..%d)", path, rel->n_bins, SK_METRIC_MAX_BINS);
    int B = rel->n_bins;
    double x0[SK_METRIC_MAX_BINS], x1[SK_METRIC_MAX_BINS], acc[SK_METRIC_MAX_BINS], conf[SK_METRIC_MAX_BINS],
        cnt[SK_METRIC_MAX_BINS];
    int n = 0;
    for (int b = 0; b < B; b++) {
        if (rel->count[b] <= 0) continue;
        x0[n] = (double)b / B + 0.08 / B;
        x1[n] = (double)(b + 1) / B - 0.08 / B;
        acc[n] = rel->acc[b];
        conf[n] = rel->conf[b];
        cnt[n] = (double)rel->count[b];
        n++;
    }
    if (n == 0) return sk_error(SK_EINVAL, "%s: the reliability table has no inputs in any bin", path);
    struct sk_figure *f = sk_figure_new(560, 560, "Reliability diagram");
    if (!f) return SK_ENOMEM;
    char sub[96];
    snprintf(sub, sizeof sub, "ECE %.4f, MCE %.4f (%d bins)", rel->ece, rel->mce, B);
    sk_figure_panel(f, 0, 0, 1, 0.74);
    sk_figure_axes(f, sub, NULL, "accuracy");
    sk_figure_limits(f, 0, 1, 0, 1);
    sk_figure_bars(f, x0, x1, NULL, acc, n, &(struct sk_figure_style){ .colour = 1, .label = "accuracy per bin" });
    sk_figure_bars(f, x0, x1, acc, conf, n,
                   &(struct sk_figure_style){ .colour = 2, .alpha = 0.55f, .label = "gap to mean confidence" });
    static const double diag[2] = { 0, 1 };
    sk_figure_line(f, diag, diag, 2,
                   &(struct sk_figure_style){ .colour = SK_FIGURE_GREY, .width = 1.5f, .dashed = true, .label = "perfectly calibrated" });
    /* the inputs per bin: most sit in the top bin, hence the log scale */
    sk_figure_panel(f, 0, 0.74, 1, 1);
    sk_figure_axes(f, NULL, "confidence (max probability)", "inputs");
    sk_figure_limits(f, 0, 1, NAN, NAN);
    sk_figure_log_y(f, true);
    sk_figure_bars(f, x0, x1, NULL, cnt, n, &(struct sk_figure_style){ .colour = SK_FIGURE_GREY });
    return finish(f, path);
}

int sk_plot_histograms(const char *path, const char *title, const char *xlabel, const float *a, int na,
                       const char *name_a, const float *b, int nb, const char *name_b, int bins, float lo, float hi)
{
    if (!path || (!a && na > 0) || (!b && nb > 0) || na < 0 || nb < 0)
        return sk_error(SK_EINVAL, "sk_plot_histograms: needs a path and the values of each histogram");
    if (bins < 1 || bins > 1000 || !(hi > lo) || !isfinite(lo) || !isfinite(hi))
        return sk_error(SK_EINVAL, "%s: a histogram needs 1..1000 bins (got %d) and finite lo < hi (got %g, %g)", path,
                        bins, lo, hi);
    double h[2][1000] = { { 0 } }, e0[1000], e1[1000];
    for (int k = 0; k < bins; k++) {
        e0[k] = lo + (hi - lo) * k / bins;
        e1[k] = lo + (hi - lo) * (k + 1) / bins;
    }
    for (int pass = 0; pass < 2; pass++) {
        const float *v = pass ? b : a;
        int n = pass ? nb : na;
        for (int i = 0; i < n; i++) {
            if (!isfinite(v[i])) continue;
            int k = (int)((v[i] - lo) / (hi - lo) * bins);
            h[pass][k < 0 ? 0 : k >= bins ? bins - 1 : k] += 1.0 / n;
        }
    }
    struct sk_figure *f = sk_figure_new(560, 420, title);
    if (!f) return SK_ENOMEM;
    sk_figure_axes(f, NULL, xlabel, "fraction of inputs");
    sk_figure_limits(f, lo, hi, NAN, NAN);
    if (na > 0)
        sk_figure_bars(f, e0, e1, NULL, h[0], bins, &(struct sk_figure_style){ .colour = 1, .alpha = 0.6f, .label = name_a });
    if (nb > 0)
        sk_figure_bars(f, e0, e1, NULL, h[1], bins, &(struct sk_figure_style){ .colour = 4, .alpha = 0.6f, .label = name_b });
    if (na == 0 && nb == 0) {
        sk_figure_free(f);
        return sk_error(SK_EINVAL, "%s: both histograms are empty", path);
    }
    return finish(f, path);
}

/* Series in single precision as the double arrays the figure takes. */
int sk_plot_line(const char *path, const char *title, const char *xlabel, const char *ylabel, const float *x,
                 const float *y, int n)
{
    if (!path || !x || !y || n < 2) return sk_error(SK_EINVAL, "sk_plot_line: needs a path and n >= 2 points (got %d)", n);
    double *xd = sk_malloc(sizeof(double) * 2 * (size_t)n);
    if (!xd) return SK_ENOMEM;
    double *yd = xd + n;
    bool any = false;
    for (int i = 0; i < n; i++) {
        xd[i] = x[i];
        yd[i] = y[i];
        any |= isfinite(x[i]) && isfinite(y[i]);
    }
    int rc = any ? SK_OK : sk_error(SK_EINVAL, "%s: no finite point to draw", path);
    struct sk_figure *f = rc ? NULL : sk_figure_new(600, 440, title);
    if (!rc && !f) rc = SK_ENOMEM;
    if (!rc) {
        sk_figure_axes(f, NULL, xlabel, ylabel);
        sk_figure_line(f, xd, yd, n, &(struct sk_figure_style){ .colour = 1 });
        rc = finish(f, path);
    }
    sk_free(xd);
    return rc;
}

int sk_plot_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const struct sk_plot_series *s, int n_series, bool log_y)
{
    if (!path || !s || n_series < 1 || n_series > 8)
        return sk_error(SK_EINVAL, "sk_plot_lines: needs a path and 1 to 8 series (got %d)", n_series);
    bool any = false;
    for (int k = 0; k < n_series; k++) {
        if (!s[k].x || !s[k].y || s[k].n < 1) return sk_error(SK_EINVAL, "%s: series %d has no points", path, k);
        for (int i = 0; i < s[k].n; i++) any |= isfinite(s[k].x[i]) && isfinite(s[k].y[i]) && (!log_y || s[k].y[i] > 0);
    }
    if (!any) return sk_error(SK_EINVAL, "%s: no finite point to draw%s", path, log_y ? " (a log axis needs y > 0)" : "");
    struct sk_figure *f = sk_figure_new(600, 440, title);
    if (!f) return SK_ENOMEM;
    sk_figure_axes(f, NULL, xlabel, ylabel);
    sk_figure_log_y(f, log_y);
    for (int k = 0; k < n_series; k++)
        sk_figure_line(f, s[k].x, s[k].y, s[k].n,
                       &(struct sk_figure_style){ .colour = (unsigned)k + 1, .dashed = s[k].dashed, .label = s[k].name });
    return finish(f, path);
}

int sk_plot_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel, const char *zlabel,
                    const double *x, int nx, const double *y, int ny, const double *z, bool log_z, int n_levels)
{
    if (!path || !x || !y || !z || nx < 2 || ny < 2)
        return sk_error(SK_EINVAL, "sk_plot_heatmap: needs a path and a grid x, y, z of at least 2 x 2 (got %d x %d)", nx, ny);
    bool any = false;
    for (long i = 0; i < (long)nx * ny && !any; i++) any = isfinite(z[i]) && (!log_z || z[i] > 0);
    if (!any) return sk_error(SK_EINVAL, "%s: no finite value to draw%s", path, log_z ? " (a log scale needs z > 0)" : "");
    struct sk_figure *f = sk_figure_new(600, 480, title);
    if (!f) return SK_ENOMEM;
    sk_figure_axes(f, NULL, xlabel, ylabel);
    sk_figure_heatmap(f, x, nx, y, ny, z, log_z, n_levels, zlabel);
    return finish(f, path);
}
