/* NumPy .npy: a two-part input (fuzz_util.h), features then labels, read
 * as a dataset (sk_data_load_npy) and as whole arrays (sk_npy_read). */
#include "fuzz_util.h"
#include "skeptic/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    if (!fuzz_split(data, size, &p)) return 0;
    const char *x = fuzz_write("x.npy", p.a, p.na);
    const char *y = fuzz_write("y.npy", p.b, p.nb);
    sk_dataset_free(sk_data_load_npy(x, y));
    int ndim = 0;
    long shape[4];
    sk_free(sk_npy_read(x, &ndim, shape));
    sk_free(sk_npy_read(y, &ndim, shape));
    return 0;
}
