/* The one BLAS/LAPACK door (sgemm split over threads, dgemm, dsyrk, dsyev),
 * thread control and the naive sgemm twin. */
#include "skeptic/core.h"

#include <cblas.h>
#include <omp.h>

/* OpenBLAS extensions (declared in its cblas.h, repeated for clarity). */
extern void openblas_set_num_threads(int);
extern char *openblas_get_corename(void);

static int n_threads;

void sk_set_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    n_threads = n;
    omp_set_num_threads(n);
    openblas_set_num_threads(1); /* sk_sgemm splits over OpenMP threads itself */
}

int sk_get_threads(void) { return n_threads > 0 ? n_threads : omp_get_max_threads(); }

const char *sk_blas_core(void) { return openblas_get_corename(); }

/* Threading: OpenBLAS runs single-threaded and sk_sgemm splits the product
 * over OpenMP threads itself. With OpenBLAS's own pthread pool beside
 * OpenMP's, the two pools spin against each other on a small machine (libgomp
 * threads busy-wait after every parallel loop while OpenBLAS's threads want
 * the same cores): measured 6,200 vs 41,000 samples/s on the MLP on 2 cores.
 * One pool (OpenMP) removes the contention. The split is a fixed function of
 * the shape and the thread count, and each block is one single-threaded
 * OpenBLAS call, so results are bitwise reproducible for a thread count. */
__attribute__((constructor)) static void sk_blas_single_thread(void) { openblas_set_num_threads(1); }

#define SK_SGEMM_PAR_MIN (1 << 19) /* M*N*K below which splitting does not pay */

static void sgemm1(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sk_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    int T = sk_get_threads();
    if (T <= 1 || omp_in_parallel() || (double)M * N * K < SK_SGEMM_PAR_MIN) {
        sgemm1(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Split the larger of M and N into T blocks (multiples of 16 columns or
     * 8 rows, the microkernel tiles). */
    bool split_n = N >= M;
    int dim = split_n ? N : M, align = split_n ? 16 : 8;
    int blk = (dim + T - 1) / T;
    blk = (blk + align - 1) / align * align;
    int nblk = (dim + blk - 1) / blk;
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < nblk; t++) {
        int lo = t * blk, len = dim - lo < blk ? dim - lo : blk;
        if (split_n)
            sgemm1(trans_a, trans_b, M, len, K, alpha, A, lda, trans_b ? B + (size_t)lo * ldb : B + lo, ldb,
                   beta, C + lo, ldc);
        else
            sgemm1(trans_a, trans_b, len, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, lda, B, ldb, beta,
                   C + (size_t)lo * ldc, ldc);
    }
}

void sk_sgemm_ref(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

void sk_dgemm(bool trans_a, bool trans_b, int M, int N, int K, double alpha,
              const double *A, int lda, const double *B, int ldb, double beta,
              double *C, int ldc)
{
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

void sk_dsyrk(bool trans, int n, int k, double alpha, const double *A, int lda, double beta, double *C, int ldc)
{
    cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans, n, k, alpha, A, lda, beta, C, ldc);
}

/* LAPACK (shipped inside OpenBLAS). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

int sk_dsyev(double *a, int n, double *w)
{
    /* A symmetric row-major matrix is its own column-major transpose, and
     * LAPACK's column-major eigenvector columns are then rows. */
    int lwork = -1, info = 0;
    double q;
    dsyev_("V", "U", &n, a, &n, w, &q, &lwork, &info);
    lwork = (int)q + 1;
    double *work = sk_malloc(sizeof(double) * (size_t)lwork);
    if (!work) return SK_ENOMEM;
    dsyev_("V", "U", &n, a, &n, w, work, &lwork, &info);
    sk_free(work);
    if (info != 0) return sk_error(SK_ENONFINITE, "eigendecomposition failed (LAPACK dsyev info %d)", info);
    return SK_OK;
}
