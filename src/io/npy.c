/* Writing NumPy .npy files (float32, C order), atomically. */
#include "skeptic/io.h"

#include <stdio.h>
#include <string.h>

int sk_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > 4) return sk_error(SK_EINVAL, "%s: npy arrays of %d dimensions are not written", path, ndim);
    char dims[128] = "";
    size_t o = 0, numel = 1;
    for (int d = 0; d < ndim; d++) {
        o += (size_t)snprintf(dims + o, sizeof dims - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
        numel *= (size_t)shape[d];
    }
    if (ndim == 1) snprintf(dims + o, sizeof dims - o, ",");
    char h[256];
    int hl = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    /* pad so that magic + length + header is a multiple of 64, ending in '\n' */
    int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
    memset(h + hl, ' ', (size_t)pad);
    hl += pad;
    h[hl++] = '\n';
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8) };
    const void *parts[3] = { pre, h, data };
    size_t lens[3] = { 10, (size_t)hl, numel * sizeof(float) };
    return sk_write_file_atomic(path, parts, lens, 3);
}
