/*
 * config.c -- defaults, key table, value parsers, file reader and checks.
 *
 * One static table names every key with its kind (count, size, duration,
 * address, ...), the field it writes and its range; config_set() is a lookup
 * in that table plus one parser per kind. The file reader only splits lines
 * into `key value` and hands each pair to config_set(), so the file and the
 * command line (--set KEY=VALUE, --listen, ...) share every check and every
 * error text.
 *
 * Decisions:
 * - Values are parsed completely before anything is written, so a failed
 *   config_set() leaves the config untouched (the caller may report and go on
 *   in a --check-config run without a half-applied value).
 * - Host names are checked for syntax (RFC 1123 labels; a last label of digits
 *   only is refused, RFC 3696 2, so "1.2.3" is never handed to getaddrinfo(),
 *   which would read it as 1.2.0.3).
 * - Only start-up code calls this file: getaddrinfo() and stdio are fine here
 *   and nowhere else (DESIGN.md invariant 4).
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/dns.h"
#include "core/err.h"

#define KB 1024ull
#define MB (1024ull * 1024)
#define GB (1024ull * 1024 * 1024)

#define MS_S 1000ull
#define MS_M (60ull * 1000)
#define MS_H (3600ull * 1000)

enum config_kind {
	CK_LISTEN,    /* ADDR:PORT, appended to the layer's list */
	CK_DNS,	      /* ADDR[:PORT] of a resolver, appended to the layer's list */
	CK_HOSTNAME,  /* host name, into a char[CONFIG_MAX_HOSTNAME + 1] or larger */
	CK_UPSTREAM,  /* HOST:PORT, name resolved at finish */
	CK_U32,	      /* plain decimal count into a uint32_t */
	CK_U32_POW2,  /* same, and a power of two */
	CK_SIZE,      /* SIZE into a uint64_t, bytes */
	CK_DURATION,  /* DUR into a uint64_t, milliseconds */
	CK_SEND_MODE, /* copy|zerocopy */
	CK_TLS,	      /* none|opportunistic|verify */
	CK_LOG_LEVEL, /* error|warn|info|debug */
	CK_PATH,      /* a file name, stored as given */
	CK_MAILBOX,   /* local@domain, into a char[CONFIG_MAX_PATH] */
};

struct config_key {
	const char *name;      /* as in the file and the long option */
	enum config_kind kind; /* selects the parser */
	size_t off;	       /* offsetof the field in struct config */
	uint64_t min, max;     /* inclusive range for numeric kinds */
};

#define F(field) offsetof(struct config, field)

static const struct config_key config_keys[] = {
    {"listen", CK_LISTEN, 0, 0, 0},
    {"shards", CK_U32, F(shards), 0, CONFIG_MAX_SHARDS},
    {"hostname", CK_HOSTNAME, F(hostname), 0, 0},
    {"upstream", CK_UPSTREAM, 0, 0, 0},
    {"max-message-size", CK_SIZE, F(max_message_size), CONFIG_MIN_MAX_MESSAGE_SIZE,
     CONFIG_MAX_MAX_MESSAGE_SIZE},
    {"max-recipients", CK_U32, F(max_recipients), CONFIG_MIN_MAX_RECIPIENTS,
     CONFIG_MAX_MAX_RECIPIENTS},
    {"max-line-length", CK_U32, F(max_line_length), CONFIG_MIN_MAX_LINE_LENGTH,
     CONFIG_MAX_MAX_LINE_LENGTH},
    {"max-data-line-length", CK_U32, F(max_data_line_length), CONFIG_MIN_MAX_DATA_LINE_LENGTH,
     CONFIG_MAX_MAX_DATA_LINE_LENGTH},
    {"max-sessions", CK_U32, F(max_sessions), CONFIG_MIN_MAX_SESSIONS, CONFIG_MAX_MAX_SESSIONS},
    {"max-connections-per-ip", CK_U32, F(max_connections_per_ip), 0, CONFIG_MAX_MAX_CONN_PER_IP},
    {"max-errors", CK_U32, F(max_errors), CONFIG_MIN_MAX_ERRORS, CONFIG_MAX_MAX_ERRORS},
    {"max-received-headers", CK_U32, F(max_received), 1, 1000},
    {"command-timeout", CK_DURATION, F(command_timeout_ms), CONFIG_MIN_TIMEOUT_MS,
     CONFIG_MAX_TIMEOUT_MS},
    {"data-timeout", CK_DURATION, F(data_timeout_ms), CONFIG_MIN_TIMEOUT_MS, CONFIG_MAX_TIMEOUT_MS},
    {"upstream-timeout", CK_DURATION, F(upstream_timeout_ms), CONFIG_MIN_TIMEOUT_MS,
     CONFIG_MAX_TIMEOUT_MS},
    {"shutdown-timeout", CK_DURATION, F(shutdown_timeout_ms), 0, CONFIG_MAX_SHUTDOWN_TIMEOUT_MS},
    {"send-mode", CK_SEND_MODE, 0, 0, 0},
    {"upstream-tls", CK_TLS, F(upstream_tls), 0, 0},
    {"tls-policy", CK_TLS, F(tls_policy), 0, 0},
    {"connect-timeout", CK_DURATION, F(connect_timeout_ms), CONFIG_MIN_TIMEOUT_MS,
     CONFIG_MAX_TIMEOUT_MS},
    {"ca-file", CK_PATH, F(ca_file), 0, 0},
    {"recv-buffer-size", CK_SIZE, F(recv_buffer_size), CONFIG_MIN_RECV_BUFFER_SIZE,
     CONFIG_MAX_RECV_BUFFER_SIZE},
    {"recv-buffers", CK_U32_POW2, F(recv_buffers), CONFIG_MIN_RECV_BUFFERS,
     CONFIG_MAX_RECV_BUFFERS},
    {"spool-memory", CK_SIZE, F(spool_memory), CONFIG_MIN_SPOOL_MEMORY, CONFIG_MAX_SPOOL_MEMORY},
    {"spool-dir", CK_PATH, F(spool_dir), 0, 0},
    {"log-level", CK_LOG_LEVEL, 0, 0, 0},
    {"zones", CK_PATH, F(zones), 0, 0},
    {"srs-domain", CK_HOSTNAME, F(srs_domain), 0, 0},
    {"srs-secret", CK_PATH, F(srs_secret), 0, 0},
    {"srs-max-age", CK_U32, F(srs_max_age), CONFIG_MIN_SRS_MAX_AGE, CONFIG_MAX_SRS_MAX_AGE},
    {"srs-max-uses", CK_U32, F(srs_max_uses), 1, 1000000},
    {"dns", CK_DNS, 0, 0, 0},
    {"mx-port", CK_U32, F(mx_port), 1, 65535},
    {"postmaster", CK_MAILBOX, F(postmaster), 0, 0},
    {"dedup-window", CK_DURATION, F(dedup_window_ms), 0, CONFIG_MAX_DEDUP_WINDOW_MS},
};

#undef F

static const char *const config_tls_names[] = {
    [CONFIG_TLS_NONE] = "none",
    [CONFIG_TLS_OPPORTUNISTIC] = "opportunistic",
    [CONFIG_TLS_VERIFY] = "verify",
};

static const char *const config_send_mode_names[] = {
    [CONFIG_SEND_COPY] = "copy",
    [CONFIG_SEND_ZEROCOPY] = "zerocopy",
};

static const char *const config_log_level_names[] = {
    [CONFIG_LOG_ERROR] = "error",
    [CONFIG_LOG_WARN] = "warn",
    [CONFIG_LOG_INFO] = "info",
    [CONFIG_LOG_DEBUG] = "debug",
};

/* How a host:port string may be taken by hostport_parse(). */
enum hp_mode {
	HP_LITERAL, /* numeric or '*' only */
	HP_CHECK,   /* a name passes with *len = 0 (syntax checked, not resolved) */
	HP_RESOLVE, /* a name is resolved with getaddrinfo() */
};

/* ---- error text ---- */

static void config_err(char *err, size_t errlen, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
config_err(char *err, size_t errlen, const char *where, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (err == NULL || errlen == 0)
		return;
	if (where != NULL && where[0] != '\0')
		n = snprintf(err, errlen, "%s: ", where);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/*
 * A value as it may be echoed in an error: at most 64 characters, anything
 * unprintable shown as '?', so a binary file cannot garble the terminal.
 */
static const char *
config_show(char out[72], const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 64; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/* ---- value parsers ---- */

/* Decimal digits only, at least one; -ERANGE on uint64_t overflow. */
static int
parse_digits(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return -SLUICE_ESYNTAX;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -SLUICE_ESYNTAX;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static size_t
digits_len(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

/* The n leading digits of s times mult, with overflow checked. */
static int
parse_scaled(const char *s, size_t n, uint64_t mult, uint64_t *out)
{
	uint64_t v;
	int rc = parse_digits(s, n, &v);

	if (rc < 0)
		return rc;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	size_t n = digits_len(s);
	uint64_t mult = 1;

	switch (s[n]) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = KB;
		break;
	case 'm':
	case 'M':
		mult = MB;
		break;
	case 'g':
	case 'G':
		mult = GB;
		break;
	default:
		return -SLUICE_ESYNTAX;
	}
	if (s[n] != '\0' && s[n + 1] != '\0')
		return -SLUICE_ESYNTAX;
	return parse_scaled(s, n, mult, out);
}

int
config_parse_duration(const char *s, uint64_t *ms)
{
	size_t n = digits_len(s);
	const char *unit = s + n;
	uint64_t mult;

	if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
		mult = MS_S;
	else if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = MS_M;
	else if (strcmp(unit, "h") == 0)
		mult = MS_H;
	else
		return -SLUICE_ESYNTAX;
	return parse_scaled(s, n, mult, ms);
}

static bool
is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/*
 * RFC 1123 2.1 host name: dot-separated labels of 1..63 letters, digits and
 * hyphens, not starting or ending with a hyphen; at most 253 characters, no
 * final dot. The last label must not be all digits (RFC 3696 2), which keeps
 * malformed IPv4 literals away from the resolver.
 */
static bool
hostname_valid(const char *s, size_t n)
{
	size_t label = 0;
	bool all_digits = true;

	if (n == 0 || n > CONFIG_MAX_HOSTNAME)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? s[i] : '.';

		if (ch == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			if (i == n && all_digits)
				return false;
			label = 0;
			all_digits = true;
			continue;
		}
		if (!is_alnum(ch) && !(ch == '-' && label > 0))
			return false;
		if (ch < '0' || ch > '9')
			all_digits = false;
		label++;
	}
	return true;
}

static int
resolve_name(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len,
	     int *gai_err)
{
	struct addrinfo hints, *res = NULL;
	char serv[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	rc = getaddrinfo(host, serv, &hints, &res);
	if (rc != 0 || res == NULL) {
		if (gai_err != NULL)
			*gai_err = rc != 0 ? rc : EAI_NONAME;
		return -EHOSTUNREACH;
	}
	BUG_ON(res->ai_addrlen > sizeof(*ss));
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/*
 * The one host:port parser behind config_parse_hostport() and the listen and
 * upstream keys. In HP_CHECK mode a valid name returns 0 with *len = 0.
 */
static int
hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, enum hp_mode mode,
	       int *gai_err)
{
	char host[CONFIG_MAX_HOSTNAME + 1];
	const char *h, *colon;
	size_t hn;
	bool bracketed = false;
	uint64_t port;
	int rc;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -SLUICE_ESYNTAX;
		h = s + 1;
		hn = (size_t)(rb - h);
		colon = rb + 1;
		bracketed = true;
	} else {
		colon = strchr(s, ':');
		if (colon == NULL || strchr(colon + 1, ':') != NULL)
			return -SLUICE_ESYNTAX; /* no port, or IPv6 without brackets */
		h = s;
		hn = (size_t)(colon - s);
	}
	if (hn == 0 || hn >= sizeof(host))
		return -SLUICE_ESYNTAX;
	memcpy(host, h, hn);
	host[hn] = '\0';

	rc = parse_digits(colon + 1, strlen(colon + 1), &port);
	if (rc == -SLUICE_ESYNTAX)
		return rc;
	if (rc < 0 || port == 0 || port > 65535)
		return -ERANGE;

	if (bracketed) {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
			return -SLUICE_ESYNTAX;
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin6, sizeof(sin6));
		*len = sizeof(sin6);
		return 0;
	}

	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		if (host[0] == '*')
			sin.sin_addr.s_addr = htonl(INADDR_ANY);
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &sin, sizeof(sin));
		*len = sizeof(sin);
		return 0;
	}

	if (mode == HP_LITERAL || !hostname_valid(host, hn))
		return -SLUICE_ESYNTAX;
	if (mode == HP_CHECK) {
		*len = 0;
		return 0;
	}
	return resolve_name(host, (uint16_t)port, ss, len, gai_err);
}

int
config_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, bool allow_name)
{
	return hostport_parse(s, ss, len, allow_name ? HP_RESOLVE : HP_LITERAL, NULL);
}

/* ---- formatting (dump, error ranges, listen text) ---- */

static void
format_size(char *out, size_t cap, uint64_t v)
{
	if (v != 0 && v % GB == 0)
		snprintf(out, cap, "%lluG", (unsigned long long)(v / GB));
	else if (v != 0 && v % MB == 0)
		snprintf(out, cap, "%lluM", (unsigned long long)(v / MB));
	else if (v != 0 && v % KB == 0)
		snprintf(out, cap, "%lluk", (unsigned long long)(v / KB));
	else
		snprintf(out, cap, "%llu", (unsigned long long)v);
}

static void
format_duration(char *out, size_t cap, uint64_t ms)
{
	if (ms == 0)
		snprintf(out, cap, "0s");
	else if (ms % MS_H == 0)
		snprintf(out, cap, "%lluh", (unsigned long long)(ms / MS_H));
	else if (ms % MS_M == 0)
		snprintf(out, cap, "%llum", (unsigned long long)(ms / MS_M));
	else if (ms % MS_S == 0)
		snprintf(out, cap, "%llus", (unsigned long long)(ms / MS_S));
	else
		snprintf(out, cap, "%llums", (unsigned long long)ms);
}

/* "1.2.3.4:25", "[::1]:25", "*:25" for the IPv4 wildcard. */
static void
format_sockaddr(char *out, size_t cap, const struct sockaddr_storage *ss)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			snprintf(a, sizeof(a), "*");
		else
			inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
		snprintf(out, cap, "%s:%u", a, (unsigned)ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
		snprintf(out, cap, "[%s]:%u", a, (unsigned)ntohs(sin6->sin6_port));
	}
}

static bool
sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;

	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
	       x->sin6_scope_id == y->sin6_scope_id;
}

static bool
sockaddr_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static uint16_t
sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static bool
sockaddr_is_any(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int
config_own_address(const struct config *c, const struct sockaddr_storage *ss)
{
	for (unsigned i = 0; i < c->nlisten; i++) {
		const struct sockaddr_storage *l = &c->listen[i].addr;
		/*
		 * A wildcard listener is reached through any local address; we
		 * cannot know every one here, loopback is the case that happens (a
		 * test setup with one port typed twice). [::] also takes IPv4.
		 */
		bool any = sockaddr_is_any(l) && sockaddr_is_loopback(ss) &&
			   (l->ss_family == ss->ss_family || l->ss_family == AF_INET6);

		if (sockaddr_port(l) == sockaddr_port(ss) && (any || sockaddr_equal(l, ss)))
			return (int)i;
	}
	return -1;
}

/* ---- config_set ---- */

static const struct config_key *
config_key_find(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++)
		if (strcmp(config_keys[i].name, key) == 0)
			return &config_keys[i];
	return NULL;
}

_Static_assert(CONFIG_MAX_DNS == DNS_MAX_SERVERS, "config dns list != core/dns");

/* `dns ADDR[:PORT]`: like listen, the first one of a layer replaces the list. */
static int
set_dns(struct config *c, const struct config_key *k, const char *value, const char *where,
	char *err, size_t errlen)
{
	struct dns_server srv;
	char shown[72];
	unsigned n = c->dns_in_layer ? c->ndns : 0;

	if (dns_server_parse(value, &srv) < 0 || strlen(value) >= sizeof(c->dns[0])) {
		config_err(err, errlen, where,
			   "%s: bad resolver '%s' (use IPV4, IPV4:PORT, IPV6 or [IPV6]:PORT)",
			   k->name, config_show(shown, value));
		return -SLUICE_ESYNTAX;
	}
	if (n == CONFIG_MAX_DNS) {
		config_err(err, errlen, where, "%s: too many resolvers (max %d)", k->name,
			   CONFIG_MAX_DNS);
		return -SLUICE_ELIMIT;
	}
	snprintf(c->dns[n], sizeof(c->dns[n]), "%s", value);
	c->ndns = n + 1;
	c->dns_in_layer = true;
	return 0;
}

static int
set_listen(struct config *c, const struct config_key *k, const char *value, const char *where,
	   char *err, size_t errlen)
{
	struct config_listen l;
	char shown[72];
	unsigned n = c->listen_in_layer ? c->nlisten : 0;
	int rc;

	memset(&l, 0, sizeof(l));
	rc = hostport_parse(value, &l.addr, &l.len, HP_LITERAL, NULL);
	if (rc == -ERANGE) {
		config_err(err, errlen, where, "%s: port out of range in '%s' (1..65535)", k->name,
			   config_show(shown, value));
		return rc;
	}
	if (rc < 0) {
		config_err(err, errlen, where,
			   "%s: bad address '%s' (use IPV4:PORT, [IPV6]:PORT or *:PORT)", k->name,
			   config_show(shown, value));
		return rc;
	}
	format_sockaddr(l.text, sizeof(l.text), &l.addr);
	for (unsigned i = 0; i < n; i++) {
		if (sockaddr_equal(&c->listen[i].addr, &l.addr)) {
			config_err(err, errlen, where, "%s: duplicate listen address '%s'", k->name,
				   l.text);
			return -EEXIST;
		}
	}
	if (n == CONFIG_MAX_LISTEN) {
		config_err(err, errlen, where, "%s: too many listen addresses (max %d)", k->name,
			   CONFIG_MAX_LISTEN);
		return -SLUICE_ELIMIT;
	}
	c->listen[n] = l;
	c->nlisten = n + 1;
	c->listen_in_layer = true;
	return 0;
}

static int
set_upstream(struct config *c, const struct config_key *k, const char *value, const char *where,
	     char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char shown[72];
	int rc;

	if (strcmp(value, "none") == 0) {
		/* no relay host: each destination's own MX (issue 5) */
		snprintf(c->upstream, sizeof(c->upstream), "none");
		memset(&c->upstream_addr, 0, sizeof(c->upstream_addr));
		c->upstream_len = 0;
		c->mx_delivery = true;
		c->upstream_set = true;
		return 0;
	}
	memset(&ss, 0, sizeof(ss));
	rc = hostport_parse(value, &ss, &len, HP_CHECK, NULL);
	if (rc == -ERANGE) {
		config_err(err, errlen, where, "%s: port out of range in '%s' (1..65535)", k->name,
			   config_show(shown, value));
		return rc;
	}
	if (rc < 0 || strlen(value) >= sizeof(c->upstream)) {
		config_err(err, errlen, where,
			   "%s: bad address '%s' (use HOST:PORT, IPV4:PORT or [IPV6]:PORT)",
			   k->name, config_show(shown, value));
		return -SLUICE_ESYNTAX;
	}
	if (len != 0 && sockaddr_is_any(&ss)) {
		config_err(err, errlen, where, "%s: '%s' is not a connectable address", k->name,
			   config_show(shown, value));
		return -SLUICE_ESYNTAX;
	}
	snprintf(c->upstream, sizeof(c->upstream), "%s", value);
	c->upstream_addr = ss;
	c->upstream_len = len;
	c->upstream_set = true;
	c->mx_delivery = false;
	return 0;
}

static int
set_number(struct config *c, const struct config_key *k, const char *value, const char *where,
	   char *err, size_t errlen)
{
	char shown[72], lo[32], hi[32];
	const char *what, *unit = "";
	uint64_t v = 0;
	int rc;

	switch (k->kind) {
	case CK_SIZE:
		rc = config_parse_size(value, &v);
		what = "not a size";
		format_size(lo, sizeof(lo), k->min);
		format_size(hi, sizeof(hi), k->max);
		unit = " (use N, Nk, NM or NG)";
		break;
	case CK_DURATION:
		rc = config_parse_duration(value, &v);
		what = "not a duration";
		format_duration(lo, sizeof(lo), k->min);
		format_duration(hi, sizeof(hi), k->max);
		unit = " (use Nms, Ns, Nm or Nh)";
		break;
	default:
		rc = parse_digits(value, strlen(value), &v);
		what = "not a number";
		snprintf(lo, sizeof(lo), "%llu", (unsigned long long)k->min);
		snprintf(hi, sizeof(hi), "%llu", (unsigned long long)k->max);
		break;
	}
	if (rc == -SLUICE_ESYNTAX) {
		config_err(err, errlen, where, "%s: %s: '%s'%s", k->name, what,
			   config_show(shown, value), unit);
		return rc;
	}
	if (rc < 0 || v < k->min || v > k->max) {
		config_err(err, errlen, where, "%s: '%s' out of range (%s..%s)", k->name,
			   config_show(shown, value), lo, hi);
		return -ERANGE;
	}
	if (k->kind == CK_U32_POW2 && (v & (v - 1)) != 0) {
		config_err(err, errlen, where, "%s: '%s' is not a power of two", k->name,
			   config_show(shown, value));
		return -ERANGE;
	}

	char *field = (char *)c + k->off;

	if (k->kind == CK_SIZE || k->kind == CK_DURATION) {
		uint64_t u64 = v;

		memcpy(field, &u64, sizeof(u64));
	} else {
		uint32_t u32 = (uint32_t)v;

		memcpy(field, &u32, sizeof(u32));
	}
	return 0;
}

static int
set_enum(const struct config_key *k, const char *value, const char *const *names, size_t n,
	 const char *expected, int *out, const char *where, char *err, size_t errlen)
{
	char shown[72];

	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], value) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	config_err(err, errlen, where, "%s: expected %s: '%s'", k->name, expected,
		   config_show(shown, value));
	return -SLUICE_ESYNTAX;
}

int
config_set(struct config *c, const char *key, const char *value, const char *where, char *err,
	   size_t errlen)
{
	const struct config_key *k = config_key_find(key);
	char shown[72];
	int rc, e;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (k == NULL) {
		config_err(err, errlen, where, "unknown key '%s'", config_show(shown, key));
		return -SLUICE_ESYNTAX;
	}
	if (value == NULL || value[0] == '\0') {
		config_err(err, errlen, where, "%s: missing value", k->name);
		return -SLUICE_ESYNTAX;
	}

	switch (k->kind) {
	case CK_LISTEN:
		return set_listen(c, k, value, where, err, errlen);
	case CK_DNS:
		return set_dns(c, k, value, where, err, errlen);
	case CK_UPSTREAM:
		return set_upstream(c, k, value, where, err, errlen);
	case CK_HOSTNAME:
		if (!hostname_valid(value, strlen(value))) {
			config_err(err, errlen, where, "%s: invalid host name '%s'", k->name,
				   config_show(shown, value));
			return -SLUICE_ESYNTAX;
		}
		snprintf((char *)c + k->off, CONFIG_MAX_HOSTNAME + 1, "%s", value);
		return 0;
	case CK_TLS:
		rc = set_enum(k, value, config_tls_names, ARRAY_SIZE(config_tls_names),
			      "none, opportunistic or verify", &e, where, err, errlen);
		if (rc == 0)
			*(enum config_tls *)((char *)c + k->off) = (enum config_tls)e;
		return rc;
	case CK_SEND_MODE:
		rc = set_enum(k, value, config_send_mode_names, ARRAY_SIZE(config_send_mode_names),
			      "copy or zerocopy", &e, where, err, errlen);
		if (rc == 0)
			c->send_mode = (enum config_send_mode)e;
		return rc;
	case CK_LOG_LEVEL:
		rc = set_enum(k, value, config_log_level_names, ARRAY_SIZE(config_log_level_names),
			      "error, warn, info or debug", &e, where, err, errlen);
		if (rc == 0)
			c->log_level = (enum config_log_level)e;
		return rc;
	case CK_U32:
	case CK_U32_POW2:
	case CK_SIZE:
	case CK_DURATION:
		return set_number(c, k, value, where, err, errlen);
	case CK_PATH:
		if (strlen(value) >= CONFIG_MAX_PATH) {
			config_err(err, errlen, where, "%s: path longer than %d bytes", k->name,
				   CONFIG_MAX_PATH - 1);
			return -ERANGE;
		}
		snprintf((char *)c + k->off, CONFIG_MAX_PATH, "%s", value);
		return 0;
	case CK_MAILBOX: {
		const char *at = strrchr(value, '@');

		if (strlen(value) >= CONFIG_MAX_PATH || at == NULL || at == value ||
		    at[1] == '\0' || strpbrk(value, " \t<>") != NULL) {
			config_err(err, errlen, where, "%s: '%s' is not an address (local@domain)",
				   k->name, config_show(shown, value));
			return -SLUICE_ESYNTAX;
		}
		snprintf((char *)c + k->off, CONFIG_MAX_PATH, "%s", value);
		return 0;
	}
	}
	BUG_ON(1); /* every kind is handled above */
	return -SLUICE_ESYNTAX;
}

/* ---- defaults and layers ---- */

void
config_begin_layer(struct config *c)
{
	c->listen_in_layer = false;
	c->dns_in_layer = false;
}

void
config_defaults(struct config *c)
{
	char err[128];
	int rc;

	memset(c, 0, sizeof(*c));
	c->shards = 0;
	c->max_message_size = CONFIG_DEFAULT_MAX_MESSAGE_SIZE;
	c->max_recipients = CONFIG_DEFAULT_MAX_RECIPIENTS;
	c->max_line_length = CONFIG_DEFAULT_MAX_LINE_LENGTH;
	c->max_data_line_length = CONFIG_DEFAULT_MAX_DATA_LINE_LENGTH;
	c->max_sessions = CONFIG_DEFAULT_MAX_SESSIONS;
	c->max_connections_per_ip = CONFIG_DEFAULT_MAX_CONN_PER_IP;
	c->max_errors = CONFIG_DEFAULT_MAX_ERRORS;
	c->max_received = CONFIG_DEFAULT_MAX_RECEIVED;
	c->command_timeout_ms = CONFIG_DEFAULT_COMMAND_TIMEOUT_MS;
	c->data_timeout_ms = CONFIG_DEFAULT_DATA_TIMEOUT_MS;
	c->upstream_timeout_ms = CONFIG_DEFAULT_UPSTREAM_TIMEOUT_MS;
	c->shutdown_timeout_ms = CONFIG_DEFAULT_SHUTDOWN_TIMEOUT_MS;
	c->connect_timeout_ms = CONFIG_DEFAULT_CONNECT_TIMEOUT_MS;
	c->tls_policy = CONFIG_TLS_VERIFY; /* issue 5: a broken certificate is never ignored */
	c->send_mode = CONFIG_SEND_COPY;
	c->recv_buffer_size = CONFIG_DEFAULT_RECV_BUFFER_SIZE;
	c->recv_buffers = CONFIG_DEFAULT_RECV_BUFFERS;
	c->spool_memory = CONFIG_DEFAULT_SPOOL_MEMORY;
	snprintf(c->spool_dir, sizeof(c->spool_dir), "%s", CONFIG_DEFAULT_SPOOL_DIR);
	c->log_level = CONFIG_LOG_INFO;
	c->srs_max_age = CONFIG_DEFAULT_SRS_MAX_AGE;
	c->srs_max_uses = CONFIG_DEFAULT_SRS_MAX_USES;
	c->mx_port = CONFIG_DEFAULT_MX_PORT;
	c->dedup_window_ms = CONFIG_DEFAULT_DEDUP_WINDOW_MS;

	/* gethostname() need not terminate a truncated name: terminate it ourselves. */
	if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0)
		c->hostname[0] = '\0';
	c->hostname[sizeof(c->hostname) - 1] = '\0';
	if (!hostname_valid(c->hostname, strlen(c->hostname)))
		snprintf(c->hostname, sizeof(c->hostname), "localhost");

	/* Literals only: cannot fail, and resolve nothing. */
	rc = config_set(c, "listen", CONFIG_DEFAULT_LISTEN, "default", err, sizeof(err));
	BUG_ON(rc != 0);
	rc = config_set(c, "upstream", CONFIG_DEFAULT_UPSTREAM, "default", err, sizeof(err));
	BUG_ON(rc != 0);
	c->upstream_set = false;
	config_begin_layer(c);
}

/* ---- file format ---- */

static bool
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One line without its LF; lineno for messages. */
static int
config_line(struct config *c, const char *p, size_t n, const char *name, unsigned lineno, char *err,
	    size_t errlen)
{
	char where[512], key[65], value[CONFIG_MAX_VALUE + 1], shown[72];
	const char *field[3];
	size_t flen[3], nf = 0, i = 0;

	snprintf(where, sizeof(where), "%s:%u", name, lineno);
	for (size_t j = 0; j < n; j++) {
		unsigned char ch = (unsigned char)p[j];

		if (ch == '#')
			break; /* comment to end of line; no value contains '#' */
		if ((ch < 0x20 && !is_blank((char)ch)) || ch == 0x7f) {
			config_err(err, errlen, where, "control character 0x%02x in line", ch);
			return -SLUICE_ESYNTAX;
		}
	}
	while (nf < 3) {
		while (i < n && is_blank(p[i]))
			i++;
		if (i == n || p[i] == '#')
			break;
		field[nf] = p + i;
		while (i < n && !is_blank(p[i]) && p[i] != '#')
			i++;
		flen[nf] = (size_t)(p + i - field[nf]);
		nf++;
	}
	if (nf == 0)
		return 0;

	memcpy(key, field[0], flen[0] < sizeof(key) ? flen[0] : sizeof(key) - 1);
	key[flen[0] < sizeof(key) ? flen[0] : sizeof(key) - 1] = '\0';
	if (flen[0] >= sizeof(key) || config_key_find(key) == NULL) {
		char k[80];

		snprintf(k, sizeof(k), "%.*s", flen[0] > 70 ? 70 : (int)flen[0], field[0]);
		config_err(err, errlen, where, "unknown key '%s'", config_show(shown, k));
		return -SLUICE_ESYNTAX;
	}
	if (nf == 3) {
		char x[80];

		snprintf(x, sizeof(x), "%.*s", flen[2] > 70 ? 70 : (int)flen[2], field[2]);
		config_err(err, errlen, where, "%s: unexpected extra field '%s'", key,
			   config_show(shown, x));
		return -SLUICE_ESYNTAX;
	}
	if (nf == 1) {
		config_err(err, errlen, where, "%s: missing value", key);
		return -SLUICE_ESYNTAX;
	}
	if (flen[1] >= sizeof(value)) {
		config_err(err, errlen, where, "%s: value too long (max %d characters)", key,
			   CONFIG_MAX_VALUE);
		return -SLUICE_ESYNTAX;
	}
	memcpy(value, field[1], flen[1]);
	value[flen[1]] = '\0';
	return config_set(c, key, value, where, err, errlen);
}

static int
config_load_mem(struct config *c, const char *text, size_t len, const char *name, char *err,
		size_t errlen)
{
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	int rc;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		lineno++;
		rc = config_line(c, p, n, name, lineno, err, errlen);
		if (rc < 0)
			return rc;
		p += n + (nl != NULL);
	}
	return 0;
}

int
config_load_string(struct config *c, const char *text, const char *name, char *err, size_t errlen)
{
	return config_load_mem(c, text, strlen(text), name, err, errlen);
}

int
config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf;
	size_t n;
	int rc;

	f = fopen(path, "r");
	if (f == NULL) {
		rc = -errno;
		config_err(err, errlen, path, "%s", strerror(-rc));
		return rc;
	}
	buf = malloc(CONFIG_MAX_FILE_SIZE + 1);
	if (buf == NULL) {
		fclose(f);
		config_err(err, errlen, path, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	n = fread(buf, 1, CONFIG_MAX_FILE_SIZE + 1, f);
	if (ferror(f)) {
		rc = errno != 0 ? -errno : -EIO;
		config_err(err, errlen, path, "%s", strerror(-rc));
		goto out;
	}
	if (n > CONFIG_MAX_FILE_SIZE) {
		rc = -EFBIG;
		config_err(err, errlen, path, "file too large (max %d bytes)",
			   CONFIG_MAX_FILE_SIZE);
		goto out;
	}
	rc = config_load_mem(c, buf, n, path, err, errlen);
out:
	free(buf);
	buf = NULL;
	fclose(f);
	return rc;
}

/* ---- finish and dump ---- */

int
config_finish(struct config *c, char *err, size_t errlen)
{
	char shown[72], a[80];
	int rc, gai = 0, own;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (c->shards == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->shards = n < 1 ? 1 : n > CONFIG_MAX_SHARDS ? CONFIG_MAX_SHARDS : (uint32_t)n;
	}
	if (c->nlisten == 0) {
		config_err(err, errlen, NULL, "listen: no listen address");
		return -SLUICE_ESYNTAX;
	}
	if (c->upstream_len == 0 && !c->mx_delivery) {
		rc = hostport_parse(c->upstream, &c->upstream_addr, &c->upstream_len, HP_RESOLVE,
				    &gai);
		if (rc < 0) {
			config_err(err, errlen, NULL, "upstream: cannot resolve '%s': %s",
				   config_show(shown, c->upstream),
				   gai != 0 ? gai_strerror(gai) : sluice_strerror(rc));
			c->upstream_len = 0;
			return rc;
		}
	}
	if (!c->mx_delivery && (own = config_own_address(c, &c->upstream_addr)) >= 0) {
		format_sockaddr(a, sizeof(a), &c->upstream_addr);
		config_err(err, errlen, NULL,
			   "upstream: %s is also our listen address %s (mail loop)", a,
			   c->listen[own].text);
		return -SLUICE_ESYNTAX;
	}
	if (c->recv_buffer_size * c->recv_buffers > CONFIG_MAX_RECV_MEMORY) {
		config_err(err, errlen, NULL,
			   "recv-buffer-size * recv-buffers = %llu bytes per shard, more than %llu",
			   (unsigned long long)(c->recv_buffer_size * c->recv_buffers),
			   (unsigned long long)CONFIG_MAX_RECV_MEMORY);
		return -ERANGE;
	}
	if ((c->srs_domain[0] == '\0') != (c->srs_secret[0] == '\0')) {
		config_err(err, errlen, NULL, "%s",
			   c->srs_domain[0] != '\0'
			       ? "srs-domain: needs srs-secret (the file of SRS secrets)"
			       : "srs-secret: needs srs-domain (our forwarding domain)");
		return -SLUICE_ESYNTAX;
	}
	return 0;
}

const char *
config_tls_name(enum config_tls t)
{
	if ((size_t)t < ARRAY_SIZE(config_tls_names))
		return config_tls_names[t];
	return "?";
}

const char *
config_send_mode_name(enum config_send_mode m)
{
	if ((size_t)m < ARRAY_SIZE(config_send_mode_names))
		return config_send_mode_names[m];
	return "?";
}

const char *
config_log_level_name(enum config_log_level l)
{
	if ((size_t)l < ARRAY_SIZE(config_log_level_names))
		return config_log_level_names[l];
	return "?";
}

void
config_dump(const struct config *c, FILE *f)
{
	char v[32];

	fprintf(f, "# sluice effective configuration\n");
	for (unsigned i = 0; i < c->nlisten; i++)
		fprintf(f, "listen %s\n", c->listen[i].text);
	fprintf(f, "shards %u\n", (unsigned)c->shards);
	fprintf(f, "hostname %s\n", c->hostname);
	fprintf(f, "upstream %s\n", c->upstream);
	if (c->zones[0] != '\0')
		fprintf(f, "zones %s\n", c->zones);
	format_size(v, sizeof(v), c->max_message_size);
	fprintf(f, "max-message-size %s\n", v);
	fprintf(f, "max-recipients %u\n", (unsigned)c->max_recipients);
	fprintf(f, "max-line-length %u\n", (unsigned)c->max_line_length);
	fprintf(f, "max-data-line-length %u\n", (unsigned)c->max_data_line_length);
	fprintf(f, "max-sessions %u\n", (unsigned)c->max_sessions);
	fprintf(f, "max-connections-per-ip %u\n", (unsigned)c->max_connections_per_ip);
	fprintf(f, "max-errors %u\n", (unsigned)c->max_errors);
	fprintf(f, "max-received-headers %u\n", (unsigned)c->max_received);
	format_duration(v, sizeof(v), c->command_timeout_ms);
	fprintf(f, "command-timeout %s\n", v);
	format_duration(v, sizeof(v), c->data_timeout_ms);
	fprintf(f, "data-timeout %s\n", v);
	format_duration(v, sizeof(v), c->upstream_timeout_ms);
	fprintf(f, "upstream-timeout %s\n", v);
	format_duration(v, sizeof(v), c->shutdown_timeout_ms);
	fprintf(f, "shutdown-timeout %s\n", v);
	fprintf(f, "send-mode %s\n", config_send_mode_name(c->send_mode));
	fprintf(f, "upstream-tls %s\n", config_tls_name(c->upstream_tls));
	fprintf(f, "tls-policy %s\n", config_tls_name(c->tls_policy));
	format_duration(v, sizeof(v), c->connect_timeout_ms);
	fprintf(f, "connect-timeout %s\n", v);
	if (c->ca_file[0] != '\0')
		fprintf(f, "ca-file %s\n", c->ca_file);
	format_size(v, sizeof(v), c->recv_buffer_size);
	fprintf(f, "recv-buffer-size %s\n", v);
	fprintf(f, "recv-buffers %u\n", (unsigned)c->recv_buffers);
	format_size(v, sizeof(v), c->spool_memory);
	fprintf(f, "spool-memory %s\n", v);
	fprintf(f, "spool-dir %s\n", c->spool_dir);
	fprintf(f, "log-level %s\n", config_log_level_name(c->log_level));
	if (c->srs_domain[0] != '\0')
		fprintf(f, "srs-domain %s\n", c->srs_domain);
	if (c->srs_secret[0] != '\0')
		fprintf(f, "srs-secret %s\n", c->srs_secret);
	fprintf(f, "srs-max-age %u\n", (unsigned)c->srs_max_age);
	fprintf(f, "srs-max-uses %u\n", (unsigned)c->srs_max_uses);
	for (unsigned i = 0; i < c->ndns; i++)
		fprintf(f, "dns %s\n", c->dns[i]);
	fprintf(f, "mx-port %u\n", (unsigned)c->mx_port);
	if (c->postmaster[0] != '\0')
		fprintf(f, "postmaster %s\n", c->postmaster);
	format_duration(v, sizeof(v), c->dedup_window_ms);
	fprintf(f, "dedup-window %s\n", v);
}
