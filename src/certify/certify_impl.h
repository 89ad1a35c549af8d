/* Internal helpers shared by the certification files. */
#ifndef SK_CERTIFY_IMPL_H
#define SK_CERTIFY_IMPL_H

#include "certify/rounding.h"
#include "skeptic/certify.h"

#include <math.h>

/* Index of the last dense layer if only dropout/flatten follow it, else -1. */
int sk_certify_last_dense(const struct sk_model *m);
/* Threat set of n values (rows of D) in centre/radius form; box NULL: none. */
int sk_certify_domain_centre_radius(const float *x, size_t n, int D, float eps, const struct sk_certify_domain *box,
                                    float *cv, float *rv);
/* IBP margins (specification form) of N boxes in centre/radius form. */
int sk_certify_ibp_margins(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, float *mlo);
/* IBP logit bounds of N boxes. */
int sk_certify_ibp_bounds(struct sk_model *m, const float *lo, const float *hi, int N, float *zlo, float *zhi);
/* CROWN: y == NULL gives logit bounds (zlo, zhi [N,K]); else margin lower
 * bounds into zlo [N,K] (zhi unused). with_ibp: intersect with IBP and take
 * the elementwise best. Every layer kind, chains and graphs (lirpa.h). */
int sk_crown(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp, float *zlo,
             float *zhi);
/* Lipschitz margin bounds (z_y - z_j)(x) - L_yj eps sqrt(dim). */
int sk_certify_lipschitz_margins(struct sk_model *m, const float *x, const int *y, int N, float eps, float *mlo);
/* All the Lipschitz method gives, the layer bounds computed once (iters as
 * sk_certify_lipschitz_bound): the log-probabilities lp[N*K], the margin bounds mlo at eps,
 * the certified radii r2 / rinf, the global bound and whether it is proved
 * (all but lp may be NULL). */
int sk_certify_lipschitz_run(struct sk_model *m, const float *x, const int *y, int N, float eps, int iters, float *lp,
                             float *mlo, float *r2, float *rinf, double *global, bool *proved);
/* The threat set of n values (rows of D) as boxes [lo, hi] rounded outward:
 * the real ball |x' - x| <= eps (within *box, NULL: none) lies inside. */
int sk_certify_outward_box(const float *x, size_t n, int D, float eps, const struct sk_certify_domain *box, float *lo,
                           float *hi);

/* The report (and cert[], may be NULL) from the log-probabilities lp and
 * the margin bounds mlo [N, n_classes] (seconds and the Lipschitz fields
 * left 0). */
void sk_certify_fill_report(const struct sk_model *m, enum sk_certify_method method, float eps, const float *lp,
                            const float *mlo, const int *y, int N, unsigned char *cert, struct sk_certify_report *rep);

#endif
