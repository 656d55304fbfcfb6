/* libFuzzer target: the modbus plugin's Modbus/TCP response path
 * (plugins/modbus/mb_proto.c) on arbitrary bytes, as a device could send
 * them. Input: byte 0 picks the request's function code (1-4), bytes 1-2
 * its quantity, the rest is the TCP stream, framed ADU by ADU exactly as
 * mb_plugin.c does; each framed ADU is parsed as the answer to that read
 * and every value in it is decoded with every type and word order. Must
 * never crash, hang or read out of bounds. */
#include "mb_proto.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t fc = (uint8_t)(1 + data[0] % 4);
    uint16_t qty = (uint16_t)(data[1] << 8 | data[2]);
    size_t n = size - 3;
    /* exact-size heap copy so ASan sees every overread */
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data + 3, n);
    size_t off = 0;
    volatile double sink = 0;
    for (;;) {
        mb_adu_t adu;
        int fl = mb_frame(p + off, n - off, &adu);
        if (fl <= 0)
            break;
        off += (size_t)fl;
        mb_resp_t r;
        if (mb_parse_read(&adu, fc, qty, &r) != 0 || r.exception) {
            sink += (double)r.exception;
            continue;
        }
        if (fc <= 2) {
            for (unsigned i = 0; i < qty; i++)
                sink += mb_bit(&r, i);
        } else {
            for (unsigned i = 0; i < qty; i++) {
                uint16_t regs[2] = {mb_reg(&r, i), i + 1 < qty ? mb_reg(&r, i + 1) : 0};
                for (int t = MB_T_BOOL; t <= MB_T_FLOAT32; t++)
                    for (int o = MB_O_ABCD; o <= MB_O_DCBA; o++) {
                        int64_t iv;
                        double dv;
                        if (mb_decode(regs, t, o, &iv, &dv))
                            sink += (double)iv;
                        else
                            sink += dv == dv ? 1 : 0;
                    }
            }
        }
    }
    (void)sink;
    free(p);
    return 0;
}
