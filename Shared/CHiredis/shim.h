#ifndef PLATFORM_CHIREDIS_SHIM_H
#define PLATFORM_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <poll.h>

/// True when an idle connection's socket is readable: RESP2 without pub/sub never sends unasked, so this
/// means the server closed it (a restart) and the connection must not be reused.
static inline int platform_redis_socket_readable(const redisContext *c) {
    if (c->fd < 0) return 1;
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN, .revents = 0 };
    return poll(&pfd, 1, 0) != 0;
}
#endif
