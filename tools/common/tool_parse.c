/*
 * tool_parse.c -- see tool_parse.h. Strict parsers: trailing garbage is an
 * error, so a typo on a test's command line fails loudly instead of silently
 * running a different load.
 */
#include "tools/common/tool_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Parse leading decimal digits; *end points after them. -EINVAL if none. */
static int
parse_digits(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = p;
	*out = v;
	return 0;
}

int
tool_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	const char *end;
	uint64_t v;
	int rc;

	rc = parse_digits(s, &end, &v);
	if (rc < 0)
		return rc;
	if (*end != '\0')
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Multiply with an overflow check. */
static int
mul_checked(uint64_t v, uint64_t m, uint64_t *out)
{
	if (m != 0 && v > UINT64_MAX / m)
		return -ERANGE;
	*out = v * m;
	return 0;
}

int
tool_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v, m = 1;
	int rc;

	rc = parse_digits(s, &end, &v);
	if (rc < 0)
		return rc;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		m = 1024;
		end++;
		break;
	case 'm':
	case 'M':
		m = 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		m = 1024 * 1024 * 1024;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end != '\0')
		return -EINVAL;
	return mul_checked(v, m, out);
}

int
tool_parse_dur(const char *s, uint64_t *ns)
{
	const char *end;
	uint64_t v, m;
	int rc;

	rc = parse_digits(s, &end, &v);
	if (rc < 0)
		return rc;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		m = 1000000000ull;
	else if (strcmp(end, "ms") == 0)
		m = 1000000ull;
	else if (strcmp(end, "m") == 0)
		m = 60000000000ull;
	else if (strcmp(end, "h") == 0)
		m = 3600000000000ull;
	else
		return -EINVAL;
	return mul_checked(v, m, ns);
}

int
tool_parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *hs, *he;
	uint64_t port;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (he == NULL || he[1] != ':')
			return -EINVAL;
		colon = he + 1;
	} else {
		hs = s;
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -EINVAL;
		he = colon;
	}
	if (he <= hs || (size_t)(he - hs) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (tool_parse_uint(colon + 1, 65535, &port) < 0 || port == 0)
		return -EINVAL;

	if (s[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -EINVAL;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	return 0;
}

const char *
tool_parse_addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, cap, "[%s]:%u", ip, ntohs(a6->sin6_port));
	} else {
		const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
		snprintf(buf, cap, "%s:%u", ip, ntohs(a4->sin_port));
	}
	return buf;
}
