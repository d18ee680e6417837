#ifndef FERRY_CMICROHTTPD_SHIM_H
#define FERRY_CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <microhttpd.h>

/* Swift cannot call C-variadic functions, so the few variadic libmicrohttpd entry points FerryHTTP needs are
   wrapped here with fixed parameters. Everything else is called from Swift directly. */

/** The URI log callback type (MHD declares it only inside a comment). */
typedef void *(*ferry_mhd_uri_log_callback)(void *cls, const char *uri, struct MHD_Connection *connection);

/**
 * MHD_start_daemon with the options FerryHTTP uses, passed as one MHD_OPTION_ARRAY.
 * The logger goes first: MHD prints to stderr anything it logs before it has seen MHD_OPTION_EXTERNAL_LOGGER.
 * `listen_fd` must be a bound, listening socket; MHD uses it instead of opening its own.
 * Zero for `connection_limit`, `timeout_seconds`, `per_ip_limit` or `thread_pool_size` leaves MHD's default.
 */
static inline struct MHD_Daemon *ferry_mhd_start_daemon(
    unsigned int flags,
    int listen_fd,
    MHD_LogCallback logger, void *logger_cls,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    MHD_RequestCompletedCallback completed, void *completed_cls,
    ferry_mhd_uri_log_callback uri_log, void *uri_log_cls,
    size_t memory_limit,
    unsigned int connection_limit,
    unsigned int timeout_seconds,
    unsigned int per_ip_limit,
    unsigned int thread_pool_size)
{
    struct MHD_OptionItem options[11];
    int n = 0;
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)logger, logger_cls };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, (intptr_t)listen_fd, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, completed_cls };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, uri_log_cls };
    if (memory_limit > 0)
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)memory_limit, NULL };
    if (connection_limit > 0)
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, (intptr_t)connection_limit, NULL };
    if (timeout_seconds > 0)
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout_seconds, NULL };
    if (per_ip_limit > 0)
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)per_ip_limit, NULL };
    if (thread_pool_size > 0)
        options[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)thread_pool_size, NULL };
    options[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/** The client's address of a connection (MHD_get_connection_info is variadic), or NULL. */
static inline const struct sockaddr *ferry_mhd_client_address(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/**
 * Whether bytes from the client wait in the connection's socket, not yet read by MHD (bytes MHD has already read
 * into its own buffer do not count). The socket is only looked at, never read.
 */
static inline int ferry_mhd_client_has_pending_bytes(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info == NULL)
        return 1;
    int pending = 0;
    if (ioctl(info->connect_fd, FIONREAD, &pending) != 0)
        return 1;
    return pending != 0;
}

/**
 * Restarts a connection's inactivity timer (MHD_set_connection_option is variadic).
 * MHD refreshes the timer only when the timeout changes from zero, so set zero first, then the real value.
 * Call only from inside the access handler or the completed callback, on the connection's own worker thread.
 */
static inline void ferry_mhd_restart_timeout(struct MHD_Connection *connection, unsigned int seconds)
{
    if (seconds == 0)
        return;
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

/** Names the calling thread as the kernel shows it (top, perf, /proc); at most 15 bytes are kept. */
static inline void ferry_name_current_thread(const char *name)
{
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

/** The calling thread's kernel name into `buffer` (at least 16 bytes). */
static inline void ferry_current_thread_name(char *buffer)
{
    prctl(PR_GET_NAME, (unsigned long)buffer, 0, 0, 0);
}

#endif
