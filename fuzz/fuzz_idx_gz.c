/* IDX content behind gzip: a two-part input (fuzz_util.h), images then
 * labels, each compressed here, so that the mutations reach the IDX
 * parser through the decompressor (fuzz_idx mutates raw gzip streams). */
#include "fuzz_util.h"
#include <zlib.h>
#include "skeptic/data.h"

static const char *write_gz(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fuzz_path(name);
    gzFile gz = gzopen(path, "wb1");
    if (!gz || (size && gzwrite(gz, data, (unsigned)size) != (int)size) || gzclose(gz) != Z_OK) abort();
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_parts p;
    if (!fuzz_split(data, size, &p)) return 0;
    const char *x = write_gz("images-idx3-ubyte.gz", p.a, p.na);
    const char *y = write_gz("labels-idx1-ubyte.gz", p.b, p.nb);
    sk_dataset_free(sk_data_load_idx(x, y));
    return 0;
}
