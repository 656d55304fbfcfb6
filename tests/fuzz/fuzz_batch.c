/* libFuzzer target: RecordBatch v2 validation and record walking on
 * arbitrary bytes. Must never crash, hang or read out of bounds. */
#include "st_batch.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_batch_hdr_t h;
    int nb;
    int64_t no, off;

    /* exact-size heap copy so ASan sees every overread */
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    (void)st_batch_validate_all(p, size, &nb, &no);
    if (st_batch_validate(p, size, 1, &h) == 0) {
        (void)st_batch_find_timestamp(p, size, h.base_timestamp, &off);
        (void)st_batch_find_timestamp(p, size, h.max_timestamp, &off);
    }
    /* walking records must be safe even when the CRC is wrong */
    (void)st_batch_find_timestamp(p, size, INT64_MIN, &off);
    (void)st_batch_size(p, size);
    free(p);
    return 0;
}
