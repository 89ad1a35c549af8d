/* Nothing a file or a flag can do breaks it: sizes are checked before
 * anything is allocated (specs from a flag against stated limits, specs from
 * a file against the file's own tensors), with a message that gives the
 * count and the limit. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "skeptic/skeptic.h"
#include "testutil.h"

static bool err_has(const char *a, const char *b)
{
    const char *e = sk_last_error();
    return strstr(e, a) && (!b || strstr(e, b));
}

static void test_spec_limits(void)
{
    struct sk_model *m = sk_model_from_spec("mlp:2-400000000-2");
    CHECK(!m && err_has("width 400000000", "limit"), "a huge mlp width is refused before allocating: %s", sk_last_error());
    m = sk_model_from_spec("cnn:100000x100000x100000-flatten-dense2");
    CHECK(!m && err_has("1000000000000000 values per row", "limit"), "C x H x W overflowing an int is refused: %s",
          sk_last_error());
    m = sk_model_from_spec("cnn:1x28x28-conv1000000000k28-flatten-dense2");
    CHECK(!m && err_has("limit", NULL), "a conv layer of 2^30 channels is refused: %s", sk_last_error());
    m = sk_model_from_spec("mlp:2-20000-20000-2");
    CHECK(!m && err_has("parameters and buffers, over the limit of 134217728", NULL),
          "400M parameters over a sum of widths that each pass: %s", sk_last_error());
    size_t np = 0, nb = 0;
    CHECK(sk_spec_size("cnn:1x28x28-conv4k3-bn-relu-flatten-dense10", &np, &nb) == 0 && np == 4 * 9 + 4 + 8 + 10 * 2704 + 10 &&
              nb == 8,
          "sk_spec_size counts without allocating (%zu parameters, %zu buffers)", np, nb);
    m = sk_model_from_spec("mlp:784-512-512-10");
    CHECK(m && m->n_params == 669706, "an ordinary spec still builds (%zu parameters)", m ? m->n_params : 0);
    sk_model_free(m);
}

/* a safetensors file with one 1x1 tensor whose metadata names `spec` */
static void write_tiny(const char *name, const char *spec)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "{\"__metadata__\":{\"skeptic.spec\":\"%s\",\"format\":\"pt\"},"
                     "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}}",
                     spec);
    while (n % 8) h[n++] = ' ';
    unsigned char buf[600];
    unsigned long long len = (unsigned long long)n;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(len >> (8 * i));
    memcpy(buf + 8, h, (size_t)n);
    memset(buf + 8 + n, 0, 4);
    sk_test_write(sk_test_path(name), buf, (size_t)n + 12);
}

static void test_file_spec_against_tensors(void)
{
    write_tiny("huge.st", "mlp:2-4000-4000-2");
    struct sk_model *m = sk_model_load(sk_test_path("huge.st"), NULL, NULL);
    CHECK(!m && err_has("16024002 parameters and buffers but the file holds 1 values", "huge.st"),
          "a 1-value file naming a 16M-parameter spec is refused before allocating: %s", sk_last_error());
    int rc = sk_cli_run("info huge.st");
    CHECK(rc == 1 && strstr(sk_cli_err, "the file holds 1 values"), "skeptic info says so: %s", sk_cli_err);
    write_tiny("huge2.st", "mlp:2-400000000-2");
    rc = sk_cli_run("info huge2.st");
    CHECK(rc == 1 && strstr(sk_cli_err, "limit"), "a spec over the limit in a file: %s", sk_cli_err);
    rc = sk_cli_run("train --data moons --arch mlp:2-100000000-2 --epochs 1 --out o.safetensors");
    CHECK(rc == 2 && strstr(sk_cli_err, "--arch") && strstr(sk_cli_err, "limit"),
          "train --arch with a 100M-wide layer is a usage error at once: %s", sk_cli_err);
}

int main(void)
{
    test_spec_limits();
    test_file_spec_against_tensors();
    return sk_test_finish("test_bad_input");
}
