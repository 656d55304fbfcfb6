/* libFuzzer target: sc_codec on arbitrary bytes. The first byte picks the
 * codec (low 3 bits, 5..7 = an unknown codec), a max_out (bits 3-4) and a
 * compression level (bits 5-7); the rest is
 *   1. decompressed -- must never crash, hang, overrun or pass max_out, and
 *      an error appends nothing;
 *   2. compressed and decompressed again -- must give the same bytes back.
 * Seeds (corpus/codec/): streams written by libsnappy, kafka-python, liblz4,
 * libzstd and zlib, plus our own output. */
#include "sc_buf.h"
#include "sc_codec.h"
#include "sc_err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t caps[4] = {64, 4096, 1u << 16, 4u << 20};
    sc_buf_t out, c;
    uint8_t *p;
    int codec, level, rc;
    size_t max_out;

    if (size < 1)
        return 0;
    codec = data[0] & 7;
    max_out = caps[(data[0] >> 3) & 3];
    level = (data[0] >> 5) - 1; /* -1 (default) .. 6 */
    data++;
    size--;
    /* exact-size heap copy so ASan sees every overread */
    p = malloc(size ? size : 1);
    memcpy(p, data, size);
    sc_buf_init(&out);
    sc_buf_init(&c);

    rc = sc_codec_decompress(codec, p, size, max_out, &out);
    if (codec > SC_CODEC_ZSTD) {
        if (rc != SC_ERR_UNSUPPORTED_COMPRESSION_TYPE)
            abort();
        goto done;
    }
    if (rc != 0 && rc != SC_ERR_CORRUPT_MESSAGE && rc != SC_ERR_NO_MEMORY)
        abort();
    if ((rc && out.len != 0) || out.len > max_out)
        abort();
    /* what decoded must re-encode and decode to the same bytes */
    if (rc == 0) {
        sc_buf_t again;
        sc_buf_init(&again);
        if (sc_codec_compress(codec, -1, out.data, out.len, &c) != 0 ||
            sc_codec_decompress(codec, c.data, c.len, out.len, &again) != 0 ||
            again.len != out.len || (out.len && memcmp(again.data, out.data, out.len) != 0))
            abort();
        sc_buf_fini(&again);
    }

    /* round trip of the raw input */
    sc_buf_reset(&c);
    sc_buf_reset(&out);
    if (sc_codec_compress(codec, level, p, size, &c) != 0)
        abort();
    if (sc_codec_decompress(codec, c.data, c.len, size, &out) != 0 || out.len != size ||
        (size && memcmp(out.data, p, size) != 0))
        abort();
done:
    sc_buf_fini(&out);
    sc_buf_fini(&c);
    free(p);
    return 0;
}
