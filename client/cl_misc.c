/*
 * cl_misc -- the pure parts of the public API: error names, the Java
 * client's murmur2 partitioner, the version string.
 *
 * murmur2 is Kafka's org.apache.kafka.common.utils.Utils.murmur2: MurmurHash2
 * (32-bit) with seed 0x9747b28c, four bytes read little-endian per step, the
 * tail mixed in the order 3, 2, 1 bytes. The partition is
 * toPositive(hash) % n where toPositive clears the sign bit (hash &
 * 0x7fffffff), not abs(): that is what makes keyed records land where the
 * Java client, librdkafka's murmur2_random and kafka-python put them.
 */
#include "strata/client.h"

#include "sc_err.h"

#include <errno.h>

/* The public enum must agree with sc_err_t. */
_Static_assert((int)STRATA_ERR_NOT_LEADER_OR_FOLLOWER == (int)SC_ERR_NOT_LEADER_OR_FOLLOWER, "err");
_Static_assert((int)STRATA_ERR_UNSUPPORTED_COMPRESSION_TYPE == (int)SC_ERR_UNSUPPORTED_COMPRESSION_TYPE, "err");
_Static_assert((int)STRATA_ERR_INVALID_PRODUCER_EPOCH == (int)SC_ERR_INVALID_PRODUCER_EPOCH, "err");
_Static_assert((int)STRATA_ERR_TIMED_OUT == (int)-ETIMEDOUT, "err");
_Static_assert((int)STRATA_ERR_NOT_IMPLEMENTED == (int)-ENOSYS, "err");
_Static_assert((int)STRATA_ERR_DEADLOCK == (int)-EDEADLK, "err");
_Static_assert((int)STRATA_ERR_INVALID_ARG == (int)-EINVAL, "err");
_Static_assert((int)STRATA_ERR_CONN_REFUSED == (int)-ECONNREFUSED, "err");
_Static_assert((int)STRATA_ERR_UNKNOWN_SERVER == (int)SC_ERR_UNKNOWN_SERVER, "err");
_Static_assert((int)STRATA_ERR_BAD_CONFIG == (int)SC_ERR_BAD_CONFIG, "err");
_Static_assert((int)STRATA_ERR_MSG_TIMED_OUT == (int)SC_ERR_MSG_TIMED_OUT, "err");
_Static_assert((int)STRATA_ERR_NOT_FOUND == (int)SC_ERR_NOT_FOUND, "err");
_Static_assert((int)STRATA_ERR_CLOSED == (int)SC_ERR_CLOSED, "err");
_Static_assert((int)STRATA_ERR_BAD_FORMAT == (int)SC_ERR_BAD_FORMAT, "err");
_Static_assert((int)STRATA_ERR_NO_MEMORY == (int)SC_ERR_NO_MEMORY, "err");
_Static_assert((int)STRATA_ERR_QUEUE_FULL == (int)SC_ERR_FULL, "err");

const char *strata_err_name(strata_err_t err) { return sc_err_name(err); }
const char *strata_err_str(strata_err_t err) { return sc_err_str(err); }

const char *strata_version(void) { return STRATA_VERSION; }

uint32_t strata_murmur2(const void *key, size_t key_len)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)key_len;
    size_t n4 = key_len / 4;

    for (size_t i = 0; i < n4; i++) {
        const uint8_t *p = d + 4 * i;
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (key_len % 4) {
    case 3:
        h ^= (uint32_t)d[(key_len & ~(size_t)3) + 2] << 16;
        /* fallthrough */
    case 2:
        h ^= (uint32_t)d[(key_len & ~(size_t)3) + 1] << 8;
        /* fallthrough */
    case 1:
        h ^= (uint32_t)d[key_len & ~(size_t)3];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t strata_partition_murmur2(const void *key, size_t key_len, int32_t partition_count)
{
    if (partition_count <= 0)
        return -1;
    return (int32_t)((strata_murmur2(key, key_len) & 0x7fffffffu) % (uint32_t)partition_count);
}
