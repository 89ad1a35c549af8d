/* skeptic/data.h — datasets as plain arrays: loaders (IDX plain or gzip),
 * built-in synthetic sets, splits.
 *
 * A dataset owns x (n rows of dim = c*h*w floats, row-major, images NCHW) and
 * y (n int labels in [0, n_classes)). Every loader validates what it reads
 * and fails with a message naming the file, the byte offset and the problem.
 */
#ifndef SKEPTIC_DATA_H
#define SKEPTIC_DATA_H

#include "skeptic/core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sk_dataset {
    int n, c, h, w, dim, n_classes;
    float *x;            /* n x dim */
    int *y;              /* n */
    char name[64];
};

struct sk_dataset *sk_dataset_new(int n, int c, int h, int w, int n_classes);
void sk_dataset_free(struct sk_dataset *d); /* NULL ok */
/* Rows idx[0..k) of d as a new dataset. */
struct sk_dataset *sk_dataset_subset(const struct sk_dataset *d, const int *idx, int k);

/* IDX files (MNIST format), plain or gzip-compressed (detected by magic).
 * Images (ubyte, 3 dims) are scaled to [0,1]; labels (ubyte, 1 dim). */
struct sk_dataset *sk_data_load_idx(const char *images_path, const char *labels_path);

/* Debian's dataset-fashion-mnist: split "train" (60,000) or "test" (10,000)
 * from dir (NULL = /usr/share/datasets/fashion-mnist, or $SKEPTIC_FASHION_MNIST). */
struct sk_dataset *sk_data_fashion_mnist(const char *dir, const char *split);

/* Synthetic sets from a seed (stream SK_STREAM_DATA):
 * two moons (2 classes, 2-D, Gaussian noise sd `noise`), spirals (k arms,
 * 2-D), Gaussian blobs (k classes in dim d, unit variance, centres on a
 * scaled simplex-like random layout). */
struct sk_dataset *sk_data_moons(int n, float noise, uint64_t seed);
struct sk_dataset *sk_data_spirals(int n, int k, float noise, uint64_t seed);
struct sk_dataset *sk_data_blobs(int n, int k, int d, float spread, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
