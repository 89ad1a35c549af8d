/* skeptic/core.h — status codes, error messages, the seeded random streams,
 * the per-graph bump arena and thread control.
 *
 * Errors: every fallible library call returns an `int` status (SK_OK == 0, a
 * negative SK_E* otherwise) or NULL, and leaves a human-readable message that
 * says what and where in a thread-local buffer read by sk_last_error(). The
 * library never prints to stdout, never calls exit() or abort() on a user's
 * mistake. Broken internal invariants trip SK_ASSERT, which stays on in release
 * builds and names file:line.
 *
 * Randomness: there is no global RNG. A 64-bit seed goes in; every stream
 * (init, data order, dropout, weight noise, attack restarts, ...) is derived
 * from it with sk_rng_derive(). The generator is SplitMix64 used as a
 * counter-based generator: the i-th 64-bit draw of a stream with key k is
 * mix64(k + (i+1) * 0x9E3779B97F4A7C15), so a stream's position is one
 * integer and a derived key is mix64(k ^ mix64(stream_id)). Same seed, same
 * thread count => same bits.
 *
 * Example: a reproducible draw and an error that says what went wrong.
 *
 *     struct sk_rng r = sk_rng_derive(sk_rng_new(42).key, SK_STREAM_INIT);
 *     double u = sk_rng_uniform_d(&r);          // same seed, same u
 *     float *buf = sk_malloc(sizeof(float) * 1000);
 *     if (!buf) { fprintf(stderr, "%s\n", sk_last_error()); return SK_ENOMEM; }
 *     sk_set_threads(2);                        // BLAS and OpenMP
 *     double t0 = sk_now();
 *     ...
 *     sk_free(buf);                             // NULL is fine too
 */
#ifndef SKEPTIC_CORE_H
#define SKEPTIC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sk_status {
    SK_OK = 0,
    SK_EINVAL = -1,   /* bad argument, malformed spec, shape that does not fit */
    SK_ENOMEM = -2,   /* allocation failed */
    SK_EIO = -3,      /* file could not be read or written */
    SK_EFORMAT = -4,  /* file content is malformed */
    SK_ENONFINITE = -5, /* a NaN or Inf appeared where it must not */
    SK_ESTATE = -6,   /* call out of order (e.g. backward without forward) */
};

/* The last error message of this thread ("" if none). Valid until the next
 * failing call on this thread. */
const char *sk_last_error(void);
/* Set the error message (printf-style) and return `status`, so that library
 * code can write `return sk_error(SK_EINVAL, "...", ...)`. */
int sk_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clear the message. */
void sk_error_clear(void);
/* Name of a status code ("SK_EINVAL", ...). */
const char *sk_status_name(int status);

/* Assertion for programmer errors: stays on in release builds. */
void sk_assert_fail(const char *expr, const char *file, int line);
#define SK_ASSERT(e) ((e) ? (void)0 : sk_assert_fail(#e, __FILE__, __LINE__))

/* Allocation hook: all library allocations go through these, so tests can
 * inject failures. sk_free(NULL) is a no-op. sk_malloc returns 64-byte aligned
 * memory and sets SK_ENOMEM on failure. */
void *sk_malloc(size_t bytes);
void *sk_calloc(size_t n, size_t size);
void sk_free(void *p);
char *sk_strdup(const char *s);
/* Tests only: make the n-th following sk_malloc/sk_calloc/sk_strdup fail
 * (1 = the next) with SK_ENOMEM and the message "out of memory (injected
 * failure)"; n <= 0 = never. One failure per call, counted over all threads.
 * The skeptic command reads it from SKEPTIC_FAIL_ALLOC=N at startup, so a
 * test can sweep N over a whole command, and says on stderr when the failure
 * was taken ("injected allocation failure N taken"). Allocations of other
 * libraries (cJSON, zlib, libpng, OpenBLAS) are not counted. */
void sk_alloc_fail_after(long n);
/* Whether the failure set by sk_alloc_fail_after has happened (true after
 * sk_alloc_fail_after(0)). */
bool sk_alloc_fail_taken(void);

/* ---- random streams ---- */
struct sk_rng {
    uint64_t key;     /* stream identity */
    uint64_t ctr;     /* number of 64-bit draws taken */
};
/* Well-known stream ids (append only: they define reproducibility). */
enum sk_stream {
    SK_STREAM_INIT = 1,
    SK_STREAM_ORDER = 2,
    SK_STREAM_DROPOUT = 3,
    SK_STREAM_NOISE = 4,
    SK_STREAM_ATTACK = 5,
    SK_STREAM_SPLIT = 6,
    SK_STREAM_DATA = 7,
    SK_STREAM_ENSEMBLE = 8,
    SK_STREAM_SGLD = 9,
};
uint64_t sk_mix64(uint64_t x);
/* A stream for `seed` (ctr = 0). */
struct sk_rng sk_rng_new(uint64_t seed);
/* Child stream `id` of a key; independent of the parent's position. */
struct sk_rng sk_rng_derive(uint64_t key, uint64_t id);
uint64_t sk_rng_u64(struct sk_rng *r);
/* Uniform in [0,1) with 24 (float) or 53 (double) random bits. */
float sk_rng_uniform(struct sk_rng *r);
double sk_rng_uniform_d(struct sk_rng *r);
/* Standard normal (Box–Muller, both values used; deterministic per draw pair). */
float sk_rng_normal(struct sk_rng *r);
/* Uniform integer in [0, n). */
uint64_t sk_rng_below(struct sk_rng *r, uint64_t n);
/* Fisher–Yates shuffle of idx[0..n). */
void sk_rng_shuffle(struct sk_rng *r, int *idx, int n);
/* Stateless draws: the i-th element of stream `key` (for parallel fills). */
float sk_rng_uniform_at(uint64_t key, uint64_t i);
float sk_rng_normal_at(uint64_t key, uint64_t i);

/* ---- arena: a bump allocator per graph, reset every step ----
 * Chunks grow on demand; sk_arena_reset() keeps one chunk as large as the
 * peak use so that after the first step no allocation happens. */
struct sk_arena;
struct sk_arena *sk_arena_new(size_t initial_bytes);
void sk_arena_free(struct sk_arena *a);                  /* NULL ok */
/* 64-byte aligned, uninitialised; NULL + SK_ENOMEM on failure. Owned by the
 * arena: valid until the next reset/free. */
void *sk_arena_alloc(struct sk_arena *a, size_t bytes);
void *sk_arena_zalloc(struct sk_arena *a, size_t bytes);
void sk_arena_reset(struct sk_arena *a);
size_t sk_arena_used(const struct sk_arena *a);

/* ---- threads ----
 * Sets the OpenMP thread count (n <= 0: all cores). OpenBLAS itself runs
 * single-threaded (set when libskeptic is loaded, for the whole process):
 * sk_sgemm splits products over the OpenMP threads, so that one thread pool
 * serves everything. Results are bitwise reproducible for a fixed thread
 * count (and OpenBLAS kernel set). On a machine shared with other work,
 * export OMP_WAIT_POLICY=PASSIVE (see README.md, section Performance). */
void sk_set_threads(int n);
int sk_get_threads(void);
/* Name of the BLAS kernel set in use (e.g. "SkylakeX", "Haswell"). */
const char *sk_blas_core(void);

/* ---- sgemm: the one single-precision matrix-product entry point ----
 * C[M,N] = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T.
 * lda/ldb/ldc are row strides. Backed by OpenBLAS cblas_sgemm, one
 * single-threaded call per block of rows/columns, one block per thread (a
 * fixed split for a given shape and thread count). Inside a parallel region
 * it runs on the calling thread only. */
void sk_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta,
              float *C, int ldc);
/* Naive twin of sk_sgemm (triple loop, double accumulation) for tests. */
void sk_sgemm_ref(bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                  const float *A, int lda, const float *B, int ldb, float beta,
                  float *C, int ldc);

/* ---- double precision: the rest of the BLAS/LAPACK door ----
 * Code outside src/core/ reaches BLAS and LAPACK only through these (and
 * sk_sgemm), so that another backend replaces one file. Single-threaded
 * calls on the calling thread; row-major like sk_sgemm. */
/* C[M,N] = alpha * op(A) op(B) + beta * C in double. */
void sk_dgemm(bool trans_a, bool trans_b, int M, int N, int K, double alpha,
              const double *A, int lda, const double *B, int ldb, double beta,
              double *C, int ldc);
/* Symmetric rank-k update of the upper triangle of C [n,n]:
 * C = alpha * A A^T + beta * C with A [n,k] (trans false), or
 * C = alpha * A^T A + beta * C with A [k,n] (trans true).
 * The strictly lower triangle of C is not touched. */
void sk_dsyrk(bool trans, int n, int k, double alpha, const double *A, int lda, double beta, double *C, int ldc);
/* Eigendecomposition of the symmetric n x n matrix a (row-major, both
 * triangles filled; LAPACK dsyev): on return row i of a is the unit
 * eigenvector of eigenvalue w[i], eigenvalues ascending. SK_ENOMEM, or
 * SK_ENONFINITE with a message when LAPACK fails (e.g. NaN entries). */
int sk_dsyev(double *a, int n, double *w);

/* Monotonic wall clock in seconds. */
double sk_now(void);

#ifdef __cplusplus
}
#endif
#endif
