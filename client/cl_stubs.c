/*
 * cl_stubs -- the admin entry points declared in
 * strata/client.h whose implementation has not landed yet. Each returns
 * STRATA_ERR_NOT_IMPLEMENTED (-ENOSYS) after checking its arguments, so the
 * shared library exports the whole API and applications can link against it
 * today. docs/client.md lists what is next.
 */
#include "strata/client.h"

#include <errno.h>

strata_err_t strata_admin_new(const strata_conf_t *conf, strata_admin_t **out, char *errstr,
                              size_t errstr_size)
{
    return out ? -ENOSYS : -EINVAL;
}

void strata_admin_free(strata_admin_t *a) { (void)a; }

strata_err_t strata_admin_create_topics(strata_admin_t *a, const strata_new_topic_t *topics,
                                        size_t count, int timeout_ms, strata_err_t *results)
{
    return -ENOSYS;
}

strata_err_t strata_admin_delete_topics(strata_admin_t *a, const char *const *names, size_t count,
                                        int timeout_ms, strata_err_t *results)
{
    return -ENOSYS;
}

strata_err_t strata_admin_describe_topics(strata_admin_t *a, const char *const *names,
                                          size_t count, int timeout_ms, strata_metadata_t **out)
{
    return -ENOSYS;
}

void strata_metadata_free(strata_metadata_t *md) { (void)md; }

strata_err_t strata_admin_describe_configs(strata_admin_t *a,
                                           const strata_config_resource_t *resources,
                                           size_t count, int timeout_ms,
                                           strata_config_resource_t **out)
{
    return -ENOSYS;
}

strata_err_t strata_admin_alter_configs(strata_admin_t *a,
                                        const strata_config_resource_t *resources, size_t count,
                                        int timeout_ms, strata_err_t *results)
{
    return -ENOSYS;
}

void strata_config_resources_free(strata_config_resource_t *res, size_t count) { (void)res; }

strata_err_t strata_admin_list_groups(strata_admin_t *a, int timeout_ms, strata_group_info_t **out,
                                      size_t *count)
{
    return -ENOSYS;
}

strata_err_t strata_admin_describe_groups(strata_admin_t *a, const char *const *group_ids,
                                          size_t count, int timeout_ms, strata_group_info_t **out)
{
    return -ENOSYS;
}

void strata_group_infos_free(strata_group_info_t *groups, size_t count) { (void)groups; }
