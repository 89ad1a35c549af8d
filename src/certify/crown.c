/* CROWN (Zhang et al. 2018): backward linear relaxation for MLPs made of
 * dense layers and ReLU / leaky ReLU, with the adaptive lower slope. */
#include "certify/certify_impl.h"

#include <math.h>
#include <string.h>

#define MAXL 32

struct mlp {
    int n;                 /* dense layers */
    int dim[MAXL + 1];     /* dim[0] input, dim[i] output of dense i (1-based) */
    const float *W[MAXL + 1], *b[MAXL + 1];
    float neg[MAXL + 1];   /* slope of the activation after dense i for x < 0 */
};

static int mlp_of(const struct sk_model *m, struct mlp *net)
{
    memset(net, 0, sizeof *net);
    net->dim[0] = m->in_dim;
    bool want_dense = true;
    for (int li = 0; li < m->n_layers; li++) {
        const struct sk_layer *L = &m->layers[li];
        if (L->kind == SK_LAYER_FLATTEN || L->kind == SK_LAYER_DROPOUT) continue;
        if (want_dense && L->kind == SK_LAYER_DENSE) {
            if (net->n == MAXL) return sk_error(SK_EINVAL, "CROWN: more than %d dense layers", MAXL);
            int i = ++net->n;
            net->dim[i] = L->units;
            net->W[i] = m->params + L->w_off;
            net->b[i] = m->params + L->b_off;
            want_dense = false;
        } else if (!want_dense && (L->kind == SK_LAYER_RELU || (L->kind == SK_LAYER_LRELU && L->p >= 0 && L->p <= 1))) {
            net->neg[net->n] = L->kind == SK_LAYER_RELU ? 0.0f : L->p;
            want_dense = true;
        } else {
            return sk_error(SK_EINVAL, "CROWN supports models of dense layers with relu/leaky relu between them "
                            "(an MLP); layer %d (%s) of '%s' does not fit: use method ibp", li,
                            sk_layer_name(L->kind), m->spec);
        }
    }
    if (net->n == 0 || want_dense)
        return sk_error(SK_EINVAL, "CROWN: model '%s' must end with a dense layer", m->spec);
    return SK_OK;
}

/* Relaxation of the activation after dense i on [l,u]:
 * lower a >= al x, upper a <= au x + bu. */
static void relax(float neg, float l, float u, float *al, float *au, float *bu)
{
    if (l >= 0) {
        *al = *au = 1.0f;
        *bu = 0.0f;
    } else if (u <= 0) {
        *al = *au = neg;
        *bu = 0.0f;
    } else {
        double fu = u, fl = (double)neg * l;
        double s = (fu - fl) / ((double)u - l);
        *au = (float)s;
        *bu = (float)(fl - s * l);
        *al = u >= -l ? 1.0f : neg;
    }
}

/* Lower bounds of Lam0 [M x dim[k]] times the output of dense k over the box
 * (c, r), using the relaxations of the activations 1..k-1 with pre-activation
 * bounds l[i], u[i]. Scratch A, B hold M x maxdim floats. Result in out[M]. */
static void backward_lower(const struct mlp *net, int k, const float *Lam0, int M, float *const *l, float *const *u,
                           const float *c, const float *r, float *A, float *B, double *bias, float *out)
{
    memcpy(A, Lam0, sizeof(float) * (size_t)M * net->dim[k]);
    for (int q = 0; q < M; q++) bias[q] = 0;
    for (int i = k; i >= 1; i--) {
        int dout = net->dim[i], din = net->dim[i - 1];
        for (int q = 0; q < M; q++) {
            const float *a = A + (size_t)q * dout;
            double s = 0;
            for (int j = 0; j < dout; j++) s += (double)a[j] * net->b[i][j];
            bias[q] += s;
        }
        /* B[M, din] = A[M, dout] W_i[dout, din] */
        sk_sgemm(false, false, M, din, dout, 1.0f, A, dout, net->W[i], din, 0.0f, B, din);
        if (i > 1) {
            const float *li = l[i - 1], *ui = u[i - 1];
            for (int j = 0; j < din; j++) {
                float al, au, bu;
                relax(net->neg[i - 1], li[j], ui[j], &al, &au, &bu);
                for (int q = 0; q < M; q++) {
                    float *p = &B[(size_t)q * din + j];
                    if (*p >= 0) {
                        *p *= al;
                    } else {
                        bias[q] += (double)*p * bu;
                        *p *= au;
                    }
                }
            }
        }
        float *t = A;
        A = B;
        B = t;
    }
    int d0 = net->dim[0];
    for (int q = 0; q < M; q++) {
        const float *a = A + (size_t)q * d0;
        double s = bias[q];
        for (int j = 0; j < d0; j++) s += (double)a[j] * c[j] - fabs((double)a[j]) * r[j];
        out[q] = (float)s;
    }
}

int sk_crown(struct sk_model *m, const float *cv, const float *rv, const int *y, int N, bool with_ibp, float *zlo,
             float *zhi)
{
    struct mlp net;
    int rc = mlp_of(m, &net);
    if (rc) return rc;
    int L = net.n, K = m->n_classes, maxd = 0;
    for (int i = 0; i <= L; i++) maxd = net.dim[i] > maxd ? net.dim[i] : maxd;
    int Mmax = 2 * maxd > 2 * K ? 2 * maxd : 2 * K;
    size_t hid = 0;
    for (int i = 1; i < L; i++) hid += (size_t)net.dim[i];
    float *A = sk_malloc(sizeof(float) * (size_t)Mmax * maxd), *B = sk_malloc(sizeof(float) * (size_t)Mmax * maxd);
    float *Lam = sk_calloc((size_t)Mmax * maxd, sizeof(float));
    float *lu = sk_malloc(sizeof(float) * (2 * hid + 1)), *out = sk_malloc(sizeof(float) * (size_t)Mmax);
    float *ac = sk_malloc(sizeof(float) * (size_t)maxd), *ar = sk_malloc(sizeof(float) * (size_t)maxd);
    double *bias = sk_malloc(sizeof(double) * (size_t)Mmax);
    float *ibl = sk_malloc(sizeof(float) * (size_t)Mmax);
    float *tcr = sk_malloc(sizeof(float) * 2 * (size_t)net.dim[0]); /* the box after the input transform */
    if (!A || !B || !Lam || !lu || !out || !ac || !ar || !bias || !ibl || !tcr) {
        rc = SK_ENOMEM;
        goto done;
    }
    float *l[MAXL + 1] = { 0 }, *u[MAXL + 1] = { 0 };
    {
        size_t off = 0;
        for (int i = 1; i < L; i++) {
            l[i] = lu + off;
            u[i] = lu + hid + off;
            off += (size_t)net.dim[i];
        }
    }
    int d0 = net.dim[0];
    for (int n = 0; n < N; n++) {
        const float *c = cv + (size_t)n * d0, *r = rv + (size_t)n * d0;
        if (m->prep) {
            /* x' = (x - shift) * scale with scale > 0: centre and radius map exactly */
            for (int j = 0; j < d0; j++) {
                tcr[j] = (c[j] - m->prep->shift[j]) * m->prep->scale[j];
                tcr[d0 + j] = r[j] * m->prep->scale[j];
            }
            c = tcr;
            r = tcr + d0;
        }
        for (int k = 1; k < L; k++) {
            int d = net.dim[k];
            /* Lam = [I; -I]: rows 0..d-1 lower of z_k, rows d..2d-1 lower of -z_k */
            memset(Lam, 0, sizeof(float) * (size_t)2 * d * d);
            for (int j = 0; j < d; j++) {
                Lam[(size_t)j * d + j] = 1.0f;
                Lam[(size_t)(d + j) * d + j] = -1.0f;
            }
            backward_lower(&net, k, Lam, 2 * d, l, u, c, r, A, B, bias, out);
            for (int j = 0; j < d; j++) {
                l[k][j] = out[j];
                u[k][j] = -out[d + j];
            }
            if (with_ibp && k > 1) {
                /* interval through activation k-1 and dense k, from the (tighter) bounds */
                int dp = net.dim[k - 1];
                for (int j = 0; j < dp; j++) {
                    float lo = l[k - 1][j], hi = u[k - 1][j], ng = net.neg[k - 1];
                    lo = lo > 0 ? lo : ng * lo;
                    hi = hi > 0 ? hi : ng * hi;
                    ac[j] = 0.5f * (lo + hi);
                    ar[j] = 0.5f * (hi - lo);
                }
                for (int j = 0; j < d; j++) {
                    const float *w = net.W[k] + (size_t)j * dp;
                    double s = net.b[k][j], t = 0;
                    for (int q = 0; q < dp; q++) {
                        s += (double)w[q] * ac[q];
                        t += fabs((double)w[q]) * ar[q];
                    }
                    float il = (float)(s - t), iu = (float)(s + t);
                    if (il > l[k][j]) l[k][j] = il;
                    if (iu < u[k][j]) u[k][j] = iu;
                }
            }
        }
        /* the output specification */
        int M;
        memset(Lam, 0, sizeof(float) * (size_t)2 * K * K);
        if (y) {
            M = K;
            for (int j = 0; j < K; j++)
                if (j != y[n]) {
                    Lam[(size_t)j * K + y[n]] = 1.0f;
                    Lam[(size_t)j * K + j] = -1.0f;
                }
        } else {
            M = 2 * K;
            for (int j = 0; j < K; j++) {
                Lam[(size_t)j * K + j] = 1.0f;
                Lam[(size_t)(K + j) * K + j] = -1.0f;
            }
        }
        backward_lower(&net, L, Lam, M, l, u, c, r, A, B, bias, out);
        float *ib = NULL;
        if (with_ibp) {
            /* IBP of the last dense layer from the final hidden bounds (specification form for margins) */
            int dp = net.dim[L - 1];
            const float *hc = c, *hr = r;
            if (L > 1) {
                for (int j = 0; j < dp; j++) {
                    float lo = l[L - 1][j], hi = u[L - 1][j], ng = net.neg[L - 1];
                    lo = lo > 0 ? lo : ng * lo;
                    hi = hi > 0 ? hi : ng * hi;
                    ac[j] = 0.5f * (lo + hi);
                    ar[j] = 0.5f * (hi - lo);
                }
                hc = ac;
                hr = ar;
            }
            for (int q = 0; q < M; q++) {
                const float *lam = Lam + (size_t)q * K;
                double s = 0, t = 0;
                for (int j = 0; j < K; j++) s += (double)lam[j] * net.b[L][j];
                for (int i = 0; i < dp; i++) {
                    double w = 0;
                    for (int j = 0; j < K; j++) w += (double)lam[j] * net.W[L][(size_t)j * dp + i];
                    s += w * hc[i];
                    t += fabs(w) * hr[i];
                }
                ibl[q] = (float)(s - t);
            }
            ib = ibl;
        }
        for (int q = 0; q < M; q++)
            if (ib && ib[q] > out[q]) out[q] = ib[q];
        if (y) {
            for (int j = 0; j < K; j++) zlo[(size_t)n * K + j] = j == y[n] ? 0.0f : out[j];
        } else {
            for (int j = 0; j < K; j++) {
                zlo[(size_t)n * K + j] = out[j];
                zhi[(size_t)n * K + j] = -out[K + j];
            }
        }
    }
done:
    sk_free(A);
    sk_free(B);
    sk_free(Lam);
    sk_free(lu);
    sk_free(out);
    sk_free(ac);
    sk_free(ar);
    sk_free(bias);
    sk_free(ibl);
    sk_free(tcr);
    return rc;
}
