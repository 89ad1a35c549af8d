/* CSV tables. The first byte picks the header mode (detect, no, yes: 0, 2, 1
 * as sk_data_load_csv reads them) and the label column (last, "0", a header
 * name "label"); the rest is the file. */
#include "fuzz_util.h"
#include "skeptic/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const int headers[3] = { 0, 2, 1 };
    static const char *const labels[3] = { NULL, "0", "label" };
    int header = headers[data[0] % 3], label = (data[0] / 3) % 3;
    const char *path = fuzz_write("table.csv", data + 1, size - 1);
    sk_dataset_free(sk_data_load_csv(path, labels[label], header));
    return 0;
}
