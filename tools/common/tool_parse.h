/*
 * tool_parse.h -- command-line value parsing for the load tools (sink, source).
 *
 * Addresses ("127.0.0.1:2526", "[::1]:2526", "localhost:2526"), sizes with
 * k/M/G suffixes (base 1024), durations (500ms, 30s, 5m, 1h; a bare number is
 * seconds) and bounded unsigned integers. All functions are pure: no I/O, no
 * allocation, no name resolution (the tools only ever talk to loopback, so a
 * literal or "localhost" is all they need; getaddrinfo was rejected to keep the
 * tools free of resolver surprises).
 */
#ifndef SLUICE_TOOLS_COMMON_TOOL_PARSE_H
#define SLUICE_TOOLS_COMMON_TOOL_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Parse "IPv4:port", "[IPv6]:port" or "localhost:port" into *ss and *len.
 * Returns 0, or -EINVAL when the text is not one of those forms or the port is
 * not 1..65535.
 */
int tool_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/*
 * Parse a byte count with an optional k/K, m/M, g/G suffix (base 1024) into
 * *out. Returns 0, -EINVAL for a malformed text, -ERANGE on overflow.
 */
int tool_parse_size(const char *s, uint64_t *out);

/*
 * Parse a duration ("500ms", "30s", "5m", "1h", "2" = 2 s) into nanoseconds.
 * Returns 0, -EINVAL or -ERANGE.
 */
int tool_parse_dur(const char *s, uint64_t *ns);

/*
 * Parse a decimal unsigned integer no larger than max. Returns 0, -EINVAL or
 * -ERANGE.
 */
int tool_parse_uint(const char *s, uint64_t max, uint64_t *out);

/*
 * Format ss as "ip:port" / "[ip6]:port" into buf (NUL-terminated, truncated
 * to cap). Returns buf, for use in messages.
 */
const char *tool_parse_addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap);

#endif /* SLUICE_TOOLS_COMMON_TOOL_PARSE_H */
