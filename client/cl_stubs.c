/*
 * cl_stubs -- the consumer and admin entry points declared in
 * strata/client.h whose implementation has not landed yet. Each returns
 * STRATA_ERR_NOT_IMPLEMENTED (-ENOSYS) after checking its arguments, so the
 * shared library exports the whole API and applications can link against it
 * today. docs/client.md lists what is next.
 */
#include "strata/client.h"

#include <errno.h>

strata_err_t strata_consumer_new(const strata_conf_t *conf, strata_consumer_t **out, char *errstr,
                                 size_t errstr_size)
{
    return out ? -ENOSYS : -EINVAL;
}

strata_err_t strata_consumer_assign(strata_consumer_t *c, const strata_topic_partition_t *tps,
                                    size_t count)
{
    return -ENOSYS;
}

strata_err_t strata_consumer_subscribe(strata_consumer_t *c, const char *const *topics,
                                       size_t count, strata_rebalance_cb rebalance_cb,
                                       void *cb_arg)
{
    return -ENOSYS;
}

strata_err_t strata_consumer_unsubscribe(strata_consumer_t *c) { return -ENOSYS; }

strata_err_t strata_consumer_poll(strata_consumer_t *c, int timeout_ms, strata_message_t **out)
{
    return -ENOSYS;
}

void strata_message_free(strata_message_t *msg) { (void)msg; }

strata_err_t strata_consumer_seek(strata_consumer_t *c, const char *topic, int32_t partition,
                                  int64_t offset)
{
    return -ENOSYS;
}

strata_err_t strata_consumer_commit(strata_consumer_t *c, strata_topic_partition_t *offsets,
                                    size_t count, int timeout_ms)
{
    return -ENOSYS;
}

strata_err_t strata_consumer_commit_async(strata_consumer_t *c,
                                          const strata_topic_partition_t *offsets, size_t count,
                                          strata_commit_cb cb, void *cb_arg)
{
    return -ENOSYS;
}

strata_err_t strata_consumer_close(strata_consumer_t *c, int timeout_ms) { return -ENOSYS; }

void strata_consumer_free(strata_consumer_t *c) { (void)c; }

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
