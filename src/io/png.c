/* PNG pictures (plots, image grids) through libpng, written atomically. */
#include "skeptic/io.h"

#include <png.h>
#include <string.h>

struct membuf {
    unsigned char *d;
    size_t n, cap;
    bool oom;
};

static void mem_write(png_structp png, png_bytep data, png_size_t len)
{
    struct membuf *b = png_get_io_ptr(png);
    if (b->oom) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->n + len) cap *= 2;
        unsigned char *nd = sk_malloc(cap);
        if (!nd) {
            b->oom = true;
            return;
        }
        if (b->d) memcpy(nd, b->d, b->n);
        sk_free(b->d);
        b->d = nd;
        b->cap = cap;
    }
    memcpy(b->d + b->n, data, len);
    b->n += len;
}

static void mem_flush(png_structp png) { (void)png; }

int sk_png_write_rgb(const char *path, const unsigned char *rgb, int w, int h)
{
    struct membuf b = { 0 };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return sk_error(SK_ENOMEM, "%s: libpng could not start", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        sk_free(b.d);
        return sk_error(SK_EIO, "%s: libpng failed while encoding", path);
    }
    png_set_write_fn(png, &b, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)(rgb + (size_t)y * w * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (b.oom) {
        sk_free(b.d);
        return sk_error(SK_ENOMEM, "%s: out of memory encoding the PNG", path);
    }
    const void *parts[1] = { b.d };
    size_t lens[1] = { b.n };
    int rc = sk_write_file_atomic(path, parts, lens, 1);
    sk_free(b.d);
    return rc;
}
