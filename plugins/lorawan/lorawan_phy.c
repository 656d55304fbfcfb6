/*
 * lorawan_phy -- PHYPayload decoding and LoRaWAN 1.0.x crypto; the formats
 * are in lorawan_phy.h.
 *
 * OpenSSL 3: AES-CMAC through EVP_MAC ("CMAC", cipher AES-128-CBC), the
 * keystream through EVP_aes_128_ecb without padding. The EVP_MAC algorithm
 * is fetched once per process and kept (fetching is the expensive part).
 */
#include "lorawan_phy.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

int pl_lorawan_phy_parse(const uint8_t *p, size_t n, pl_lorawan_phy_t *out)
{
    pl_lorawan_phy_t f;
    if (n < 5 || n > PL_LORAWAN_PHY_MAX)
        return -EINVAL;
    memset(&f, 0, sizeof(f));
    f.mhdr = p[0];
    f.mtype = p[0] >> 5;
    f.major = p[0] & 3;
    if (f.major != 0 || f.mtype == PL_LORAWAN_RFU)
        return -EINVAL;
    f.msg = p;
    f.msg_len = n - 4;
    memcpy(f.mic, p + n - 4, 4);
    switch (f.mtype) {
    case PL_LORAWAN_JOIN_REQUEST:
        if (n != 23)
            return -EINVAL;
        f.join_eui = rd64(p + 1);
        f.dev_eui = rd64(p + 9);
        f.dev_nonce = (uint16_t)(p[17] | p[18] << 8);
        break;
    case PL_LORAWAN_JOIN_ACCEPT:
        if (n != 17 && n != 33)
            return -EINVAL;
        break;
    case PL_LORAWAN_PROPRIETARY:
        break;
    default: {
        if (n < 1 + 7 + 4)
            return -EINVAL;
        f.dev_addr = rd32(p + 1);
        f.fctrl = p[5];
        f.fcnt16 = (uint16_t)(p[6] | p[7] << 8);
        f.fopts_len = p[5] & 0x0F;
        size_t end = n - 4, pos = 8;
        if (pos + f.fopts_len > end)
            return -EINVAL;
        f.fopts = p + pos;
        pos += f.fopts_len;
        if (pos < end) {
            f.has_fport = 1;
            f.fport = p[pos++];
            f.frm = p + pos;
            f.frm_len = end - pos;
            if (f.fport == 0 && f.fopts_len > 0)
                return -EINVAL;
        }
        break;
    }
    }
    *out = f;
    return 0;
}

int pl_lorawan_phy_dir(const pl_lorawan_phy_t *f)
{
    return f->mtype == PL_LORAWAN_JOIN_ACCEPT || f->mtype == PL_LORAWAN_UNCONFIRMED_DOWN ||
           f->mtype == PL_LORAWAN_CONFIRMED_DOWN;
}

const char *pl_lorawan_mtype_name(uint8_t mtype)
{
    static const char *names[8] = {"join_request",     "join_accept",    "unconfirmed_up",
                                   "unconfirmed_down", "confirmed_up",   "confirmed_down",
                                   "rfu",              "proprietary"};
    return names[mtype & 7];
}

/* Fetched once for the process and kept: EVP_MAC objects are reference
 * counted and safe to share between threads. */
static EVP_MAC *cmac_alg;
static pthread_once_t cmac_once = PTHREAD_ONCE_INIT;

static void cmac_fetch(void)
{
    cmac_alg = EVP_MAC_fetch(NULL, "CMAC", NULL);
}

static int cmac(const uint8_t key[16], const uint8_t *a, size_t alen, const uint8_t *b,
                size_t blen, uint8_t mic[4])
{
    int rc = -EIO;
    EVP_MAC_CTX *ctx = NULL;
    uint8_t full[16];
    size_t outl = 0;
    char cipher[] = "AES-128-CBC";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    pthread_once(&cmac_once, cmac_fetch);
    if (!cmac_alg)
        return -EIO;
    if (!(ctx = EVP_MAC_CTX_new(cmac_alg)))
        return -EIO;
    if (!EVP_MAC_init(ctx, key, 16, params))
        goto out;
    if (alen && !EVP_MAC_update(ctx, a, alen))
        goto out;
    if (blen && !EVP_MAC_update(ctx, b, blen))
        goto out;
    if (!EVP_MAC_final(ctx, full, &outl, sizeof(full)) || outl != 16)
        goto out;
    memcpy(mic, full, 4);
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    return rc;
}

static void block(uint8_t b[16], uint8_t first, int dir, uint32_t dev_addr, uint32_t fcnt32,
                  uint8_t last)
{
    memset(b, 0, 16);
    b[0] = first;
    b[5] = (uint8_t)(dir ? 1 : 0);
    for (int i = 0; i < 4; i++) {
        b[6 + i] = (uint8_t)(dev_addr >> (8 * i));
        b[10 + i] = (uint8_t)(fcnt32 >> (8 * i));
    }
    b[15] = last;
}

int pl_lorawan_mic(const uint8_t key[16], int dir, uint32_t dev_addr, uint32_t fcnt32,
                   const uint8_t *msg, size_t len, uint8_t mic[4])
{
    uint8_t b0[16];
    if (len > 255)
        return -EINVAL;
    block(b0, 0x49, dir, dev_addr, fcnt32, (uint8_t)len);
    return cmac(key, b0, 16, msg, len, mic);
}

int pl_lorawan_join_mic(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mic[4])
{
    return cmac(key, msg, len, NULL, 0, mic);
}

int pl_lorawan_crypt(const uint8_t key[16], int dir, uint32_t dev_addr, uint32_t fcnt32,
                     const uint8_t *in, size_t len, uint8_t *out)
{
    int rc = -EIO;
    EVP_CIPHER_CTX *ctx;
    if (len > 255)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (!(ctx = EVP_CIPHER_CTX_new()))
        return -EIO;
    if (!EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL))
        goto out;
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    for (size_t off = 0, i = 1; off < len; off += 16, i++) {
        uint8_t a[16], s[16];
        int outl = 0;
        block(a, 0x01, dir, dev_addr, fcnt32, (uint8_t)i);
        if (!EVP_EncryptUpdate(ctx, s, &outl, a, 16) || outl != 16)
            goto out;
        size_t k = len - off < 16 ? len - off : 16;
        for (size_t j = 0; j < k; j++)
            out[off + j] = in[off + j] ^ s[j];
    }
    rc = 0;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

uint32_t pl_lorawan_fcnt_next(int have_last, uint32_t last, uint16_t fcnt16)
{
    if (!have_last)
        return fcnt16;
    uint32_t c = (last & 0xFFFF0000u) | fcnt16;
    if (c <= last)
        c += 0x10000u; /* wraps to the low half at 2^32; the MIC decides */
    return c;
}

int pl_lorawan_fcnt_verify(const pl_lorawan_phy_t *f, const uint8_t nwk_skey[16], int have_last,
                           uint32_t last, uint32_t *fcnt32)
{
    uint8_t mic[4];
    int dir = pl_lorawan_phy_dir(f);
    uint32_t c = pl_lorawan_fcnt_next(have_last, last, f->fcnt16);
    int rc = pl_lorawan_mic(nwk_skey, dir, f->dev_addr, c, f->msg, f->msg_len, mic);
    if (rc)
        return rc;
    if (memcmp(mic, f->mic, 4) == 0 && (!have_last || c > last)) {
        *fcnt32 = c;
        return PL_LORAWAN_FCNT_OK;
    }
    if (!have_last)
        return PL_LORAWAN_FCNT_BAD_MIC;
    /* the same low bits at or below the last accepted counter: a replay
     * (or a late copy) when the MIC agrees there */
    uint32_t r = (last & 0xFFFF0000u) | f->fcnt16;
    if (r > last)
        r -= 0x10000u;
    if (r <= last) {
        if ((rc = pl_lorawan_mic(nwk_skey, dir, f->dev_addr, r, f->msg, f->msg_len, mic)))
            return rc;
        if (memcmp(mic, f->mic, 4) == 0) {
            *fcnt32 = r;
            return PL_LORAWAN_FCNT_REPLAY;
        }
    }
    return PL_LORAWAN_FCNT_BAD_MIC;
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int pl_lorawan_hex_decode(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < 2 * n; i++) /* all checked before out is touched */
        if (hexdigit((unsigned char)hex[i]) < 0)
            return -EINVAL;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(hexdigit((unsigned char)hex[2 * i]) << 4 |
                           hexdigit((unsigned char)hex[2 * i + 1]));
    return 0;
}

void pl_lorawan_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}
