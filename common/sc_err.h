/*
 * sc_err -- the one error type of the Strata tree.
 *
 *   0            OK
 *   1 ... 4095   Kafka wire error codes, unchanged (a handler returns them as is)
 *  -1 ... -4095  -errno (what io_uring and most syscalls give)
 *  <= -5000      local codes that are neither Kafka's nor the kernel's
 *
 * Kafka's own UNKNOWN_SERVER_ERROR is -1 on the wire; here it is the local code
 * SC_ERR_UNKNOWN_SERVER, and sc_err_to_kafka() maps every value to the int16
 * that goes on the wire.
 *
 * Names and messages come from the X-macro tables below. Thread-safe: pure.
 */
#ifndef SC_ERR_H
#define SC_ERR_H

#include <stdint.h>

typedef int sc_err_t;

/* Kafka wire codes: X(NAME, code, message) */
#define SC_KAFKA_ERRORS(X)                                                          \
    X(OFFSET_OUT_OF_RANGE, 1, "offset out of range")                                \
    X(CORRUPT_MESSAGE, 2, "corrupt message (CRC or framing)")                       \
    X(UNKNOWN_TOPIC_OR_PARTITION, 3, "unknown topic or partition")                  \
    X(INVALID_FETCH_SIZE, 4, "invalid fetch size")                                  \
    X(LEADER_NOT_AVAILABLE, 5, "leader not available")                              \
    X(NOT_LEADER_OR_FOLLOWER, 6, "not leader or follower")                          \
    X(REQUEST_TIMED_OUT, 7, "request timed out")                                    \
    X(BROKER_NOT_AVAILABLE, 8, "broker not available")                              \
    X(REPLICA_NOT_AVAILABLE, 9, "replica not available")                            \
    X(MESSAGE_TOO_LARGE, 10, "message too large")                                   \
    X(STALE_CONTROLLER_EPOCH, 11, "stale controller epoch")                         \
    X(OFFSET_METADATA_TOO_LARGE, 12, "offset metadata too large")                   \
    X(NETWORK_EXCEPTION, 13, "network exception")                                   \
    X(COORDINATOR_LOAD_IN_PROGRESS, 14, "coordinator load in progress")             \
    X(COORDINATOR_NOT_AVAILABLE, 15, "coordinator not available")                   \
    X(NOT_COORDINATOR, 16, "not coordinator")                                       \
    X(INVALID_TOPIC_EXCEPTION, 17, "invalid topic")                                 \
    X(RECORD_LIST_TOO_LARGE, 18, "record list too large")                           \
    X(NOT_ENOUGH_REPLICAS, 19, "not enough in-sync replicas")                       \
    X(NOT_ENOUGH_REPLICAS_AFTER_APPEND, 20, "not enough replicas after append")     \
    X(INVALID_REQUIRED_ACKS, 21, "invalid required acks")                           \
    X(ILLEGAL_GENERATION, 22, "illegal generation")                                 \
    X(INCONSISTENT_GROUP_PROTOCOL, 23, "inconsistent group protocol")               \
    X(INVALID_GROUP_ID, 24, "invalid group id")                                     \
    X(UNKNOWN_MEMBER_ID, 25, "unknown member id")                                   \
    X(INVALID_SESSION_TIMEOUT, 26, "invalid session timeout")                       \
    X(REBALANCE_IN_PROGRESS, 27, "rebalance in progress")                           \
    X(INVALID_COMMIT_OFFSET_SIZE, 28, "invalid commit offset size")                 \
    X(TOPIC_AUTHORIZATION_FAILED, 29, "topic authorization failed")                 \
    X(GROUP_AUTHORIZATION_FAILED, 30, "group authorization failed")                 \
    X(CLUSTER_AUTHORIZATION_FAILED, 31, "cluster authorization failed")             \
    X(INVALID_TIMESTAMP, 32, "invalid timestamp")                                   \
    X(UNSUPPORTED_SASL_MECHANISM, 33, "unsupported SASL mechanism")                 \
    X(ILLEGAL_SASL_STATE, 34, "illegal SASL state")                                 \
    X(UNSUPPORTED_VERSION, 35, "unsupported version")                               \
    X(TOPIC_ALREADY_EXISTS, 36, "topic already exists")                             \
    X(INVALID_PARTITIONS, 37, "invalid partitions")                                 \
    X(INVALID_REPLICATION_FACTOR, 38, "invalid replication factor")                 \
    X(INVALID_REPLICA_ASSIGNMENT, 39, "invalid replica assignment")                 \
    X(INVALID_CONFIG, 40, "invalid config")                                         \
    X(NOT_CONTROLLER, 41, "not controller")                                         \
    X(INVALID_REQUEST, 42, "invalid request")                                       \
    X(UNSUPPORTED_FOR_MESSAGE_FORMAT, 43, "unsupported for message format")         \
    X(POLICY_VIOLATION, 44, "policy violation")                                     \
    X(OUT_OF_ORDER_SEQUENCE_NUMBER, 45, "out of order sequence number")             \
    X(DUPLICATE_SEQUENCE_NUMBER, 46, "duplicate sequence number")                   \
    X(INVALID_PRODUCER_EPOCH, 47, "invalid producer epoch")                         \
    X(INVALID_TXN_STATE, 48, "invalid transaction state")                           \
    X(INVALID_PRODUCER_ID_MAPPING, 49, "invalid producer id mapping")               \
    X(INVALID_TRANSACTION_TIMEOUT, 50, "invalid transaction timeout")               \
    X(CONCURRENT_TRANSACTIONS, 51, "concurrent transactions")                       \
    X(TRANSACTION_COORDINATOR_FENCED, 52, "transaction coordinator fenced")         \
    X(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 53, "transactional id authorization failed") \
    X(SECURITY_DISABLED, 54, "security disabled")                                   \
    X(OPERATION_NOT_ATTEMPTED, 55, "operation not attempted")                       \
    X(KAFKA_STORAGE_ERROR, 56, "storage error")                                     \
    X(LOG_DIR_NOT_FOUND, 57, "log dir not found")                                   \
    X(SASL_AUTHENTICATION_FAILED, 58, "SASL authentication failed")                 \
    X(UNKNOWN_PRODUCER_ID, 59, "unknown producer id")                               \
    X(REASSIGNMENT_IN_PROGRESS, 60, "reassignment in progress")                     \
    X(FETCH_SESSION_ID_NOT_FOUND, 70, "fetch session id not found")                 \
    X(INVALID_FETCH_SESSION_EPOCH, 71, "invalid fetch session epoch")               \
    X(LISTENER_NOT_FOUND, 72, "listener not found")                                 \
    X(TOPIC_DELETION_DISABLED, 73, "topic deletion disabled")                       \
    X(FENCED_LEADER_EPOCH, 74, "fenced leader epoch")                               \
    X(UNKNOWN_LEADER_EPOCH, 75, "unknown leader epoch")                             \
    X(UNSUPPORTED_COMPRESSION_TYPE, 76, "unsupported compression type")             \
    X(STALE_BROKER_EPOCH, 77, "stale broker epoch")                                 \
    X(OFFSET_NOT_AVAILABLE, 78, "offset not available")                             \
    X(MEMBER_ID_REQUIRED, 79, "member id required")                                 \
    X(PREFERRED_LEADER_NOT_AVAILABLE, 80, "preferred leader not available")         \
    X(GROUP_MAX_SIZE_REACHED, 81, "group max size reached")                         \
    X(FENCED_INSTANCE_ID, 82, "fenced instance id")                                 \
    X(INVALID_RECORD, 87, "invalid record")

/* Local codes: X(NAME, code, message). Never sent on the wire as such. */
#define SC_LOCAL_ERRORS(X)                                                          \
    X(UNKNOWN_SERVER, -5000, "unknown server error")                                \
    X(LOG_FAILED, -5001, "log is failed after an I/O error (sticky)")               \
    X(BAD_CONFIG, -5002, "bad configuration")                                       \
    X(NOT_FOUND, -5003, "not found")                                                \
    X(CLOSED, -5004, "closed")                                                      \
    X(AGAIN, -5005, "try again")                                                    \
    X(BAD_FORMAT, -5006, "bad on-disk format")                                      \
    X(NO_MEMORY, -5007, "out of memory")                                            \
    X(FULL, -5008, "full")                                                          \
    X(OFFSET_NOT_ON_BOUNDARY, -5009, "offset is not on a batch boundary")           \
    X(MSG_TIMED_OUT, -5010, "message timed out (message.timeout.ms)")

enum {
    SC_OK = 0,
#define SC__X(name, code, msg) SC_ERR_##name = (code),
    SC_KAFKA_ERRORS(SC__X) SC_LOCAL_ERRORS(SC__X)
#undef SC__X
};

/* "OFFSET_OUT_OF_RANGE", "ENOSPC", "LOG_FAILED", or "ERR_<n>" for an unknown
 * value. Returns a static string. */
const char *sc_err_name(sc_err_t err);

/* A human message: the table's text, strerror() for -errno. Static string. */
const char *sc_err_str(sc_err_t err);

/* The int16 a Kafka response carries for err: wire codes unchanged, 0 for OK,
 * KAFKA_STORAGE_ERROR for I/O errnos and LOG_FAILED, -1 (UNKNOWN_SERVER_ERROR)
 * for everything else. */
int16_t sc_err_to_kafka(sc_err_t err);

#endif
