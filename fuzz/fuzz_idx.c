/* IDX files as they are on disk (plain, or gzip detected by its magic): a
 * two-part input (fuzz_util.h), images then labels. */
#include "fuzz_util.h"
#include "skeptic/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    if (!fuzz_split(data, size, &p)) return 0;
    const char *x = fuzz_write("images-idx3-ubyte", p.a, p.na);
    const char *y = fuzz_write("labels-idx1-ubyte", p.b, p.nb);
    sk_dataset_free(sk_data_load_idx(x, y));
    return 0;
}
