/* Shared pieces of the curvature layer: the random streams of its
 * estimators and the chunked loss of a model. */
#ifndef SKEPTIC_CURVATURE_IMPL_H
#define SKEPTIC_CURVATURE_IMPL_H

#include "skeptic/curvature.h"

/* Child streams of the caller's seed (sk_rng_derive(seed, id)); private to
 * this layer, so they are not in core.h's table. */
enum {
    CURV_STREAM_START = 0x63750001,   /* Lanczos start vectors (one per run) */
    CURV_STREAM_PROBE = 0x63750002,   /* Hutchinson probes (one per probe) */
    CURV_STREAM_SETS = 0x63750003,    /* lambda_max sample sets */
    CURV_STREAM_ASCENT = 0x63750004,  /* sharpness start points */
    CURV_STREAM_PAC = 0x63750005,     /* PAC-Bayes weight noise (one per draw) */
    CURV_STREAM_ROWS = 0x63750006,    /* the N rows chosen for the loss */
    CURV_STREAM_BATCHES = 0x63750007, /* gradient-noise batches */
};

/* Mean cross-entropy (eval mode) of m over n rows, chunk by chunk on graph
 * g (reset here), weighted by rows; no gradient. */
int sk_curv_model_loss(struct sk_model *m, struct sk_graph *g, const float *x, const int *y, int n, int chunk,
                       double *loss);
/* Copy rows idx[0..n) of x (in_dim each) and y into xo, yo. */
void sk_curv_gather(const float *x, const int *y, int in_dim, const int *idx, int n, float *xo, int *yo);

#endif
