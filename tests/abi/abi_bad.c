/*
 * abi_bad -- plugins the host must refuse, one per ABI_BAD_* define:
 *   ABI_BAD_MAJOR: descriptor says ABI major 2;
 *   ABI_BAD_CAP:   requires a host capability bit no host has (1 << 40);
 *   ABI_BAD_MINOR: built for a newer minor than the host's;
 *   ABI_NO_ENTRY:  exports no strata_plugin_entry_v1.
 */
#include "strata/plugin.h"

#ifndef ABI_NO_ENTRY
static void nop(void *p) {}
static const strata_plugin_ops_t ops = {.struct_size = sizeof ops, .stop = nop, .destroy = nop};

static const strata_plugin_desc_t desc = {
    .struct_size = sizeof desc,
#ifdef ABI_BAD_MAJOR
    .abi_major = STRATA_PLUGIN_ABI_MAJOR + 1,
#else
    .abi_major = STRATA_PLUGIN_ABI_MAJOR,
#endif
#ifdef ABI_BAD_MINOR
    .abi_minor = STRATA_PLUGIN_ABI_MINOR + 1,
#else
    .abi_minor = STRATA_PLUGIN_ABI_MINOR,
#endif
    .name = "abi_bad",
    .version = "0",
    .kind = STRATA_PLUGIN_KIND_SOURCE,
#ifdef ABI_BAD_CAP
    .required_host_caps = (uint64_t)1 << 40,
#endif
    .ops = &ops,
};

STRATA_PLUGIN_EXPORT const strata_plugin_desc_t *
strata_plugin_entry_v1(uint32_t major, uint32_t minor, const strata_host_api_t *host)
{
    return &desc;
}
#else
STRATA_PLUGIN_EXPORT int not_a_plugin(void);
int not_a_plugin(void) { return 0; }
#endif
