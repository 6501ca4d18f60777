#ifndef PLATFORM_CLIBPQ_SHIM_H
#define PLATFORM_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <poll.h>

/// Non-blocking check used before handing out a pooled connection: true when the server has
/// sent something (or closed the socket) while the connection sat idle.
static inline int platform_pq_socket_readable(const PGconn *conn) {
    int fd = PQsocket(conn);
    if (fd < 0) return 1;
    struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
    int rc = poll(&pfd, 1, 0);
    return rc != 0;
}
#endif
