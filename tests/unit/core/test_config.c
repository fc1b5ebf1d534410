/*
 * test_config.c -- core/config: defaults, every key, ranges at N-1/N/N+1,
 * exact error texts with FILE:LINE, layers for listen, value parsers, dump.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/check.h"
#include "core/config.h"
#include "core/err.h"

static char err[512];

static struct config
fresh(void)
{
	struct config c;

	config_defaults(&c);
	return c;
}

/* Set one key; on success assert no error text. Returns the code. */
static int
set(struct config *c, const char *key, const char *value)
{
	int rc;

	memset(err, 'X', sizeof(err));
	rc = config_set(c, key, value, "t.conf:1", err, sizeof(err));
	if (rc == 0)
		cr_expect_str_empty(err, "%s %s: unexpected error text '%s'", key, value, err);
	return rc;
}

/* The numeric field behind a key, widened. */
static uint64_t
get(const struct config *c, const char *key)
{
	static const struct {
		const char *key;
		size_t off;
		bool is64;
	} map[] = {
	    {"shards", offsetof(struct config, shards), false},
	    {"max-message-size", offsetof(struct config, max_message_size), true},
	    {"max-recipients", offsetof(struct config, max_recipients), false},
	    {"max-line-length", offsetof(struct config, max_line_length), false},
	    {"max-data-line-length", offsetof(struct config, max_data_line_length), false},
	    {"max-sessions", offsetof(struct config, max_sessions), false},
	    {"max-connections-per-ip", offsetof(struct config, max_connections_per_ip), false},
	    {"max-errors", offsetof(struct config, max_errors), false},
	    {"command-timeout", offsetof(struct config, command_timeout_ms), true},
	    {"data-timeout", offsetof(struct config, data_timeout_ms), true},
	    {"upstream-timeout", offsetof(struct config, upstream_timeout_ms), true},
	    {"shutdown-timeout", offsetof(struct config, shutdown_timeout_ms), true},
	    {"recv-buffer-size", offsetof(struct config, recv_buffer_size), true},
	    {"recv-buffers", offsetof(struct config, recv_buffers), false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(map[i].key, key) != 0)
			continue;
		const char *p = (const char *)c + map[i].off;
		if (map[i].is64) {
			uint64_t v;
			memcpy(&v, p, sizeof(v));
			return v;
		}
		uint32_t v;
		memcpy(&v, p, sizeof(v));
		return v;
	}
	cr_assert_fail("no field for key %s", key);
	return 0;
}

static uint16_t
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* Field-wise equality of every setting (struct padding is not compared). */
static void
assert_same_settings(const struct config *a, const struct config *b, const char *what)
{
	cr_assert_eq(a->nlisten, b->nlisten, "%s: nlisten", what);
	for (unsigned i = 0; i < a->nlisten; i++) {
		cr_assert_str_eq(a->listen[i].text, b->listen[i].text, "%s: listen", what);
		cr_assert_eq(a->listen[i].len, b->listen[i].len, "%s: listen len", what);
		cr_assert_eq(memcmp(&a->listen[i].addr, &b->listen[i].addr, a->listen[i].len), 0,
			     "%s: listen addr", what);
	}
	cr_assert_eq(a->shards, b->shards, "%s: shards", what);
	cr_assert_str_eq(a->hostname, b->hostname, "%s: hostname", what);
	cr_assert_str_eq(a->upstream, b->upstream, "%s: upstream", what);
	cr_assert_eq(a->upstream_len, b->upstream_len, "%s: upstream_len", what);
	cr_assert_eq(memcmp(&a->upstream_addr, &b->upstream_addr, a->upstream_len), 0,
		     "%s: upstream addr", what);
	cr_assert_eq(a->max_message_size, b->max_message_size, "%s", what);
	cr_assert_eq(a->max_recipients, b->max_recipients, "%s", what);
	cr_assert_eq(a->max_line_length, b->max_line_length, "%s", what);
	cr_assert_eq(a->max_data_line_length, b->max_data_line_length, "%s", what);
	cr_assert_eq(a->max_sessions, b->max_sessions, "%s", what);
	cr_assert_eq(a->max_connections_per_ip, b->max_connections_per_ip, "%s", what);
	cr_assert_eq(a->max_errors, b->max_errors, "%s", what);
	cr_assert_eq(a->command_timeout_ms, b->command_timeout_ms, "%s", what);
	cr_assert_eq(a->data_timeout_ms, b->data_timeout_ms, "%s", what);
	cr_assert_eq(a->upstream_timeout_ms, b->upstream_timeout_ms, "%s", what);
	cr_assert_eq(a->shutdown_timeout_ms, b->shutdown_timeout_ms, "%s", what);
	cr_assert_eq(a->send_mode, b->send_mode, "%s", what);
	cr_assert_eq(a->recv_buffer_size, b->recv_buffer_size, "%s", what);
	cr_assert_eq(a->recv_buffers, b->recv_buffers, "%s", what);
	cr_assert_eq(a->log_level, b->log_level, "%s", what);
}

static const char *const all_keys[] = {
    "listen",
    "shards",
    "hostname",
    "upstream",
    "max-message-size",
    "max-recipients",
    "max-line-length",
    "max-data-line-length",
    "max-sessions",
    "max-connections-per-ip",
    "max-errors",
    "command-timeout",
    "data-timeout",
    "upstream-timeout",
    "shutdown-timeout",
    "send-mode",
    "recv-buffer-size",
    "recv-buffers",
    "log-level",
    "mx-port",
    "max-received-headers",
    "srs-max-uses",
    "upstream-tls",
};

/* ---- defaults ---- */

Test(config, defaults_match_the_spec)
{
	struct config c = fresh();

	cr_assert_eq(c.nlisten, 1);
	cr_assert_str_eq(c.listen[0].text, "127.0.0.1:2525");
	cr_assert_eq(c.listen[0].addr.ss_family, AF_INET);
	cr_assert_eq(c.listen[0].len, sizeof(struct sockaddr_in));
	cr_assert_eq(port_of(&c.listen[0].addr), 2525);
	cr_assert_str_eq(c.upstream, "127.0.0.1:2526");
	cr_assert_eq(c.upstream_len, sizeof(struct sockaddr_in), "literal default is resolved");
	cr_assert_eq(port_of(&c.upstream_addr), 2526);
	cr_assert_not(c.upstream_set);
	cr_assert_eq(c.shards, 0);
	cr_assert_eq(c.max_message_size, 26214400);
	cr_assert_eq(c.max_recipients, 1000);
	cr_assert_eq(c.max_line_length, 2048);
	cr_assert_eq(c.max_data_line_length, 1048576);
	cr_assert_eq(c.max_sessions, 16384);
	cr_assert_eq(c.max_connections_per_ip, 256);
	cr_assert_eq(c.max_errors, 20);
	cr_assert_eq(c.command_timeout_ms, 300000);
	cr_assert_eq(c.data_timeout_ms, 600000);
	cr_assert_eq(c.upstream_timeout_ms, 120000);
	cr_assert_eq(c.shutdown_timeout_ms, 30000);
	cr_assert_eq(c.send_mode, CONFIG_SEND_COPY);
	cr_assert_eq(c.recv_buffer_size, 16384);
	cr_assert_eq(c.recv_buffers, 1024);
	cr_assert_eq(c.log_level, CONFIG_LOG_INFO);
	cr_assert_eq(c.generation, 0);
}

Test(config, default_hostname_is_gethostname_or_localhost)
{
	struct config c = fresh();
	char h[256] = "";

	cr_assert_gt(strlen(c.hostname), 0);
	if (gethostname(h, sizeof(h) - 1) == 0 && strcmp(c.hostname, "localhost") != 0)
		cr_assert_str_eq(c.hostname, h);
	/* whatever it is, the hostname key must accept it */
	snprintf(h, sizeof(h), "%s", c.hostname);
	cr_assert_eq(set(&c, "hostname", h), 0, "%s", err);
}

/* ---- every key ---- */

Test(config, every_numeric_key_sets_its_field)
{
	static const struct {
		const char *key, *value;
		uint64_t want;
	} rows[] = {
	    {"shards", "4", 4},
	    {"max-message-size", "10M", 10485760},
	    {"max-message-size", "1048577", 1048577},
	    {"max-recipients", "50", 50},
	    {"max-line-length", "1000", 1000},
	    {"max-data-line-length", "65536", 65536},
	    {"max-sessions", "100", 100},
	    {"max-connections-per-ip", "0", 0},
	    {"max-connections-per-ip", "7", 7},
	    {"max-errors", "3", 3},
	    {"command-timeout", "500ms", 500},
	    {"command-timeout", "45", 45000},
	    {"data-timeout", "5m", 300000},
	    {"upstream-timeout", "1h", 3600000},
	    {"shutdown-timeout", "0", 0},
	    {"shutdown-timeout", "10s", 10000},
	    {"recv-buffer-size", "4k", 4096},
	    {"recv-buffer-size", "1M", 1048576},
	    {"recv-buffers", "64", 64},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct config c = fresh();
		int rc = set(&c, rows[i].key, rows[i].value);

		cr_expect_eq(rc, 0, "%s %s: %s", rows[i].key, rows[i].value, err);
		cr_expect_eq(get(&c, rows[i].key), rows[i].want, "%s %s -> %llu", rows[i].key,
			     rows[i].value, (unsigned long long)get(&c, rows[i].key));
	}
}

Test(config, send_mode_and_log_level)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "send-mode", "zerocopy"), 0);
	cr_assert_eq(c.send_mode, CONFIG_SEND_ZEROCOPY);
	cr_assert_eq(set(&c, "send-mode", "copy"), 0);
	cr_assert_eq(c.send_mode, CONFIG_SEND_COPY);
	cr_assert_eq(set(&c, "send-mode", "splice"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: send-mode: expected copy or zerocopy: 'splice'");
	cr_assert_eq(set(&c, "send-mode", "Copy"), -SLUICE_ESYNTAX, "names are case-sensitive");

	static const char *const levels[] = {"error", "warn", "info", "debug"};
	for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
		cr_assert_eq(set(&c, "log-level", levels[i]), 0);
		cr_assert_eq((size_t)c.log_level, i);
		cr_assert_str_eq(config_log_level_name(c.log_level), levels[i]);
	}
	cr_assert_eq(set(&c, "log-level", "trace"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: log-level: expected error, warn, info or debug: 'trace'");
	cr_assert_eq(c.log_level, CONFIG_LOG_DEBUG, "unchanged after an error");
	cr_assert_lt(CONFIG_LOG_ERROR, CONFIG_LOG_WARN);
	cr_assert_lt(CONFIG_LOG_INFO, CONFIG_LOG_DEBUG);
}

Test(config, hostname_syntax)
{
	static const struct {
		const char *name;
		bool ok;
	} rows[] = {
	    {"mx1.example.com", true},
	    {"a", true},
	    {"A-1.b2", true},
	    {"xn--bcher-kva.example", true},
	    {"1a.example", true},
	    {"", false},
	    {"-a.example", false},
	    {"a-.example", false},
	    {"a..example", false},
	    {".example", false},
	    {"example.", false},
	    {"a_b.example", false},
	    {"a b", false},
	    {"1.2.3.4", false}, /* last label all digits */
	    {"[192.0.2.1]", false},
	    {"h\xc3\xa9.example", false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct config c = fresh();
		int rc = set(&c, "hostname", rows[i].name);

		cr_expect_eq(rc == 0, rows[i].ok, "hostname '%s': rc %d", rows[i].name, rc);
		if (rc == 0)
			cr_expect_str_eq(c.hostname, rows[i].name);
	}
	struct config c = fresh();
	cr_assert_eq(set(&c, "hostname", "a_b"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: hostname: invalid host name 'a_b'");
}

Test(config, hostname_length_limits)
{
	char name[300];
	struct config c = fresh();

	/* label of 63 ok, 64 not */
	memset(name, 'a', 63);
	name[63] = '\0';
	cr_assert_eq(set(&c, "hostname", name), 0);
	memset(name, 'a', 64);
	name[64] = '\0';
	cr_assert_eq(set(&c, "hostname", name), -SLUICE_ESYNTAX);

	/* total 253 ok, 254 not: "aaa...a." repeated, 4 labels of 63 = 255 with dots */
	for (size_t total = 252; total <= 254; total++) {
		for (size_t i = 0; i < total; i++)
			name[i] = (i % 64 == 63) ? '.' : 'a';
		name[total] = '\0';
		if (name[total - 1] == '.')
			name[total - 1] = 'a';
		int rc = set(&c, "hostname", name);
		cr_expect_eq(rc == 0, total <= 253, "length %zu: rc %d %s", total, rc, err);
	}
}

Test(config, listen_forms)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "listen", "[::1]:2525"), 0);
	cr_assert_eq(set(&c, "listen", "*:25"), 0);
	cr_assert_eq(set(&c, "listen", "[::]:587"), 0);
	cr_assert_eq(set(&c, "listen", "192.0.2.10:65535"), 0);
	cr_assert_eq(c.nlisten, 4);
	cr_assert_str_eq(c.listen[0].text, "[::1]:2525");
	cr_assert_eq(c.listen[0].addr.ss_family, AF_INET6);
	cr_assert_eq(c.listen[0].len, sizeof(struct sockaddr_in6));
	cr_assert_str_eq(c.listen[1].text, "*:25");
	cr_assert_eq(((struct sockaddr_in *)&c.listen[1].addr)->sin_addr.s_addr, htonl(INADDR_ANY));
	cr_assert_str_eq(c.listen[2].text, "[::]:587");
	cr_assert_str_eq(c.listen[3].text, "192.0.2.10:65535");
	cr_assert_eq(port_of(&c.listen[3].addr), 65535);
}

Test(config, listen_errors)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "listen", "localhost:25"), -SLUICE_ESYNTAX, "no names for listen");
	cr_assert_str_eq(err, "t.conf:1: listen: bad address 'localhost:25' "
			      "(use IPV4:PORT, [IPV6]:PORT or *:PORT)");
	cr_assert_eq(set(&c, "listen", "127.0.0.1:0"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: listen: port out of range in '127.0.0.1:0' (1..65535)");
	cr_assert_eq(set(&c, "listen", "127.0.0.1:65536"), -ERANGE);
	cr_assert_eq(set(&c, "listen", "::1:25"), -SLUICE_ESYNTAX);
	cr_assert_eq(c.nlisten, 1, "a failed listen does not clear the list");
	cr_assert_str_eq(c.listen[0].text, "127.0.0.1:2525");
}

Test(config, listen_max_16_then_error)
{
	struct config c = fresh();
	char a[32];

	for (int i = 1; i <= CONFIG_MAX_LISTEN; i++) {
		snprintf(a, sizeof(a), "127.0.0.%d:25", i);
		cr_assert_eq(set(&c, "listen", a), 0, "%s: %s", a, err);
	}
	cr_assert_eq(c.nlisten, 16);
	cr_assert_eq(set(&c, "listen", "127.0.0.100:25"), -SLUICE_ELIMIT);
	cr_assert_str_eq(err, "t.conf:1: listen: too many listen addresses (max 16)");
	cr_assert_eq(c.nlisten, 16);
}

Test(config, listen_duplicate_is_an_error)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "listen", "[::1]:25"), 0);
	cr_assert_eq(set(&c, "listen", "[0:0::1]:25"), -EEXIST);
	cr_assert_str_eq(err, "t.conf:1: listen: duplicate listen address '[::1]:25'");
	cr_assert_eq(set(&c, "listen", "[::1]:26"), 0, "other port is fine");
}

Test(config, listen_layers_replace_then_append)
{
	struct config c = fresh();

	config_begin_layer(&c);
	cr_assert_eq(
	    config_load_string(&c, "listen 127.0.0.1:25\nlisten [::1]:25\n", "f", err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(c.nlisten, 2, "the file's first listen replaced the default");
	cr_assert_str_eq(c.listen[0].text, "127.0.0.1:25");
	cr_assert_str_eq(c.listen[1].text, "[::1]:25");

	/* command line layer */
	config_begin_layer(&c);
	cr_assert_eq(config_set(&c, "listen", "127.0.0.1:2600", "--listen", err, sizeof(err)), 0);
	cr_assert_eq(c.nlisten, 1);
	cr_assert_str_eq(c.listen[0].text, "127.0.0.1:2600");
	cr_assert_eq(config_set(&c, "listen", "127.0.0.1:2601", "--listen", err, sizeof(err)), 0);
	cr_assert_eq(c.nlisten, 2);

	/* a layer without listen keeps the list */
	config_begin_layer(&c);
	cr_assert_eq(config_set(&c, "shards", "2", "--shards", err, sizeof(err)), 0);
	cr_assert_eq(c.nlisten, 2);
}

Test(config, listen_same_address_in_two_layers_is_not_duplicate)
{
	struct config c = fresh();

	config_begin_layer(&c);
	cr_assert_eq(set(&c, "listen", "127.0.0.1:2525"), 0, "%s", err);
	cr_assert_eq(c.nlisten, 1);
}

Test(config, failed_first_listen_of_layer_keeps_previous_list)
{
	struct config c = fresh();

	config_begin_layer(&c);
	cr_assert_lt(set(&c, "listen", "nonsense"), 0);
	cr_assert_eq(c.nlisten, 1);
	cr_assert_str_eq(c.listen[0].text, "127.0.0.1:2525");
	cr_assert_eq(set(&c, "listen", "127.0.0.2:25"), 0);
	cr_assert_eq(c.nlisten, 1, "still the first successful listen of the layer");
}

Test(config, upstream_literal_and_name)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "upstream", "[::1]:2526"), 0);
	cr_assert(c.upstream_set);
	cr_assert_eq(c.upstream_len, sizeof(struct sockaddr_in6), "literal resolved at once");
	cr_assert_str_eq(c.upstream, "[::1]:2526");

	cr_assert_eq(set(&c, "upstream", "localhost:2526"), 0);
	cr_assert_eq(c.upstream_len, 0, "a name waits for config_finish");
	cr_assert_str_eq(c.upstream, "localhost:2526");
	cr_assert_eq(config_finish(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_neq(c.upstream_len, 0);
	cr_assert_eq(port_of(&c.upstream_addr), 2526);
}

Test(config, upstream_errors)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "upstream", "localhost"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: upstream: bad address 'localhost' "
			      "(use HOST:PORT, IPV4:PORT or [IPV6]:PORT)");
	cr_assert_eq(set(&c, "upstream", "*:25"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: upstream: '*:25' is not a connectable address");
	cr_assert_eq(set(&c, "upstream", "[::]:25"), -SLUICE_ESYNTAX);
	cr_assert_eq(set(&c, "upstream", "0.0.0.0:25"), -SLUICE_ESYNTAX);
	cr_assert_eq(set(&c, "upstream", "mx.example:0"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: upstream: port out of range in 'mx.example:0' (1..65535)");
	cr_assert_eq(set(&c, "upstream", "1.2.3:25"), -SLUICE_ESYNTAX, "not a sloppy IPv4");
	cr_assert_eq(set(&c, "upstream", "bad_name:25"), -SLUICE_ESYNTAX);
	cr_assert_not(c.upstream_set, "unchanged after errors");
	cr_assert_str_eq(c.upstream, "127.0.0.1:2526");
}

/* ---- ranges at N-1, N, N+1 ---- */

Test(config, every_range_at_its_bounds)
{
	static const struct {
		const char *key;
		const char *below; /* NULL when the minimum is 0 */
		const char *min, *max, *above;
	} rows[] = {
	    {"shards", NULL, "0", "1024", "1025"},
	    {"max-message-size", "1023", "1024", "1073741824", "1073741825"},
	    {"max-message-size", "1023", "1k", "1G", "1025M"},
	    {"max-recipients", "0", "1", "100000", "100001"},
	    {"max-line-length", "511", "512", "2048", "2049"},
	    {"max-data-line-length", "999", "1000", "1073741824", "1073741825"},
	    {"max-sessions", "0", "1", "1048576", "1048577"},
	    {"max-connections-per-ip", NULL, "0", "1048576", "1048577"},
	    {"max-errors", "0", "1", "10000", "10001"},
	    {"command-timeout", "99ms", "100ms", "24h", "86400001ms"},
	    {"data-timeout", "99ms", "100ms", "1440m", "86401s"},
	    {"upstream-timeout", "0", "100ms", "86400", "25h"},
	    {"shutdown-timeout", NULL, "0", "1h", "3600001ms"},
	    {"recv-buffer-size", "511", "512", "1M", "1048577"},
	    {"recv-buffers", "0", "1", "32768", "65536"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct config c = fresh();
		const char *k = rows[i].key;

		if (rows[i].below != NULL)
			cr_expect_eq(set(&c, k, rows[i].below), -ERANGE, "%s %s", k, rows[i].below);
		cr_expect_eq(set(&c, k, rows[i].min), 0, "%s %s: %s", k, rows[i].min, err);
		cr_expect_eq(set(&c, k, rows[i].max), 0, "%s %s: %s", k, rows[i].max, err);
		cr_expect_eq(set(&c, k, rows[i].above), -ERANGE, "%s %s", k, rows[i].above);
	}
}

Test(config, max_line_length_2048_ok_2049_error_text)
{
	struct config c = fresh();

	cr_assert_eq(
	    config_set(&c, "max-line-length", "2047", "--max-line-length", err, sizeof(err)), 0);
	cr_assert_eq(c.max_line_length, 2047);
	cr_assert_eq(
	    config_set(&c, "max-line-length", "2048", "--max-line-length", err, sizeof(err)), 0);
	cr_assert_eq(c.max_line_length, 2048);
	cr_assert_eq(
	    config_set(&c, "max-line-length", "2049", "--max-line-length", err, sizeof(err)),
	    -ERANGE);
	cr_assert_str_eq(err,
			 "--max-line-length: max-line-length: '2049' out of range (512..2048)");
	cr_assert_eq(c.max_line_length, 2048, "unchanged after the error");
}

Test(config, range_error_texts_use_units)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "max-message-size", "2G"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: max-message-size: '2G' out of range (1k..1G)");
	cr_assert_eq(set(&c, "command-timeout", "50ms"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: command-timeout: '50ms' out of range (100ms..24h)");
	cr_assert_eq(set(&c, "shutdown-timeout", "2h"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: shutdown-timeout: '2h' out of range (0s..1h)");
	cr_assert_eq(set(&c, "max-recipients", "99999999999999999999999"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: max-recipients: '99999999999999999999999' "
			      "out of range (1..100000)");
}

Test(config, recv_buffers_must_be_power_of_two)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "recv-buffers", "1000"), -ERANGE);
	cr_assert_str_eq(err, "t.conf:1: recv-buffers: '1000' is not a power of two");
	cr_assert_eq(set(&c, "recv-buffers", "32767"), -ERANGE);
	cr_assert_eq(set(&c, "recv-buffers", "2"), 0);
	cr_assert_eq(set(&c, "recv-buffers", "1"), 0);
	cr_assert_eq(c.recv_buffers, 1);
}

Test(config, syntax_error_texts)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "max-recipients", "abc"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: max-recipients: not a number: 'abc'");
	cr_assert_eq(set(&c, "max-recipients", "-1"), -SLUICE_ESYNTAX);
	cr_assert_eq(set(&c, "max-recipients", "1k"), -SLUICE_ESYNTAX, "counts take no suffix");
	cr_assert_eq(set(&c, "max-message-size", "25MB"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: max-message-size: not a size: '25MB' "
			      "(use N, Nk, NM or NG)");
	cr_assert_eq(set(&c, "data-timeout", "1d"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: data-timeout: not a duration: '1d' "
			      "(use Nms, Ns, Nm or Nh)");
	cr_assert_eq(set(&c, "shards", ""), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: shards: missing value");
	cr_assert_eq(config_set(&c, "shards", NULL, "x", err, sizeof(err)), -SLUICE_ESYNTAX);
}

Test(config, unknown_key_names_the_key)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "max-recipient", "5"), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "t.conf:1: unknown key 'max-recipient'");
	cr_assert_eq(config_set(&c, "Listen", "127.0.0.1:25", "--set", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "--set: unknown key 'Listen'");
}

Test(config, where_null_gives_no_prefix)
{
	struct config c = fresh();

	cr_assert_eq(config_set(&c, "max-errors", "x", NULL, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "max-errors: not a number: 'x'");
}

Test(config, error_echo_is_truncated_and_printable)
{
	struct config c = fresh();
	char v[200];

	memset(v, '7', 100);
	v[0] = 'x';
	v[1] = '\x1b';
	v[100] = '\0';
	cr_assert_eq(set(&c, "max-errors", v), -SLUICE_ESYNTAX);
	char want[200];
	snprintf(want, sizeof(want), "t.conf:1: max-errors: not a number: 'x?%.62s...'", v + 2);
	cr_assert_str_eq(err, want);
}

Test(config, small_error_buffer_is_terminated)
{
	struct config c = fresh();
	char small[8];

	memset(small, 'X', sizeof(small));
	cr_assert_lt(config_set(&c, "nope", "1", "t.conf:1", small, sizeof(small)), 0);
	cr_assert_eq(strnlen(small, sizeof(small)), sizeof(small) - 1);
	cr_assert_lt(config_set(&c, "nope", "1", "t.conf:1", NULL, 0), 0, "NULL err is fine");
}

/* ---- file format ---- */

Test(config, file_error_has_file_and_line)
{
	struct config c = fresh();
	const char *text = "# sluice test config\n"
			   "\n"
			   "listen 127.0.0.1:2525\n"
			   "shards 2\n"
			   "   # indented comment\n"
			   "\t\n"
			   "max-errors 5 # trailing comment\n"
			   "hostname mx.example.org\n"
			   "\n"
			   "# eleven\n"
			   "log-level debug\n"
			   "max-recipients abc\n"
			   "max-errors 9\n";

	cr_assert_eq(config_load_string(&c, text, "sluice.conf", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "sluice.conf:12: max-recipients: not a number: 'abc'");
	cr_assert_eq(c.shards, 2, "lines before the error applied");
	cr_assert_eq(c.max_errors, 5, "stops at the first error");
	cr_assert_eq(c.log_level, CONFIG_LOG_DEBUG);
	cr_assert_str_eq(c.hostname, "mx.example.org");
}

Test(config, file_unknown_key_and_extra_field_and_missing_value)
{
	struct config c = fresh();

	cr_assert_eq(
	    config_load_string(&c, "shards 1\nfrobnicate yes\n", "a.conf", err, sizeof(err)),
	    -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "a.conf:2: unknown key 'frobnicate'");

	cr_assert_eq(config_load_string(&c, "listen 127.0.0.1:25 127.0.0.2:25\n", "b.conf", err,
					sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "b.conf:1: listen: unexpected extra field '127.0.0.2:25'");

	cr_assert_eq(config_load_string(&c, "\n\nshards\n", "c.conf", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "c.conf:3: shards: missing value");

	cr_assert_eq(config_load_string(&c, "oops\n", "d.conf", err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "d.conf:1: unknown key 'oops'", "unknown beats missing value");

	cr_assert_eq(config_load_string(&c, "hostname my host\n", "e.conf", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "e.conf:1: hostname: unexpected extra field 'host'");
}

Test(config, file_crlf_tabs_no_final_newline)
{
	struct config c = fresh();

	cr_assert_eq(config_load_string(&c, "shards\t3\r\n  max-errors   4  \r\nmax-sessions 9",
					"f", err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.shards, 3);
	cr_assert_eq(c.max_errors, 4);
	cr_assert_eq(c.max_sessions, 9);
}

Test(config, file_comment_glued_to_value)
{
	struct config c = fresh();

	cr_assert_eq(config_load_string(&c, "max-errors 4#four\n", "f", err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(c.max_errors, 4);
}

Test(config, file_control_character_is_an_error)
{
	struct config c = fresh();

	cr_assert_eq(config_load_string(&c, "shards 1\nshards \x01\n", "f", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "f:2: control character 0x01 in line");
}

Test(config, file_value_too_long)
{
	struct config c = fresh();
	char *text = malloc(2000);

	strcpy(text, "hostname ");
	memset(text + 9, 'a', 1100);
	text[1109] = '\0';
	cr_assert_eq(config_load_string(&c, text, "f", err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "f:1: hostname: value too long (max 1023 characters)");
	free(text);
	text = NULL;
}

Test(config, file_empty_and_comment_only)
{
	struct config c = fresh();
	struct config d = fresh();

	cr_assert_eq(config_load_string(&c, "", "f", err, sizeof(err)), 0);
	cr_assert_eq(config_load_string(&c, "# nothing\n\n   \n", "f", err, sizeof(err)), 0);
	assert_same_settings(&c, &d, "empty file");
}

Test(config, load_file_errors_and_success)
{
	struct config c = fresh();
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_eq(config_load_file(&c, "/nonexistent/sluice.conf", err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "/nonexistent/sluice.conf: No such file or directory");
	cr_assert_eq(config_load_file(&c, "/", err, sizeof(err)), -EISDIR);
	cr_assert_str_eq(err, "/: Is a directory");

	cr_assert_geq(fd, 0);
	const char *text = "shards 2\nmax-recipients 10\nmax-errors 0\n";
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), -ERANGE);
	char want[128];
	snprintf(want, sizeof(want), "%s:3: max-errors: '0' out of range (1..10000)", path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(c.max_recipients, 10);
	unlink(path);
}

Test(config, load_file_too_large)
{
	struct config c = fresh();
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	int fd = mkstemp(path);
	char *big = malloc(CONFIG_MAX_FILE_SIZE + 1);

	cr_assert_geq(fd, 0);
	memset(big, '\n', CONFIG_MAX_FILE_SIZE + 1);
	cr_assert_eq(write(fd, big, CONFIG_MAX_FILE_SIZE + 1), CONFIG_MAX_FILE_SIZE + 1);
	close(fd);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), -EFBIG);
	cr_assert(strstr(err, "file too large") != NULL, "%s", err);
	/* exactly the maximum of blank lines is fine */
	cr_assert_eq(truncate(path, CONFIG_MAX_FILE_SIZE), 0);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	free(big);
	big = NULL;
}

Test(config, load_file_nul_byte_is_an_error)
{
	struct config c = fresh();
	char path[] = "/tmp/sluice-test-config-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "shards 1\nsha\0rds 2\n", 19), 19);
	close(fd);
	cr_assert_eq(config_load_file(&c, path, err, sizeof(err)), -SLUICE_ESYNTAX);
	char want[128];
	snprintf(want, sizeof(want), "%s:2: control character 0x00 in line", path);
	cr_assert_str_eq(err, want);
	unlink(path);
}

/* ---- finish ---- */

Test(config, finish_shards_zero_means_online_cpus)
{
	struct config c = fresh();
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_eq(config_finish(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.shards, (uint32_t)(n < 1 ? 1 : n > 1024 ? 1024 : n));
	cr_assert_eq(config_finish(&c, err, sizeof(err)), 0, "idempotent");

	struct config d = fresh();
	cr_assert_eq(set(&d, "shards", "3"), 0);
	cr_assert_eq(config_finish(&d, err, sizeof(err)), 0);
	cr_assert_eq(d.shards, 3);
}

Test(config, finish_refuses_mail_loop)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "upstream", "127.0.0.1:2525"), 0);
	cr_assert_eq(config_finish(&c, err, sizeof(err)), -SLUICE_ESYNTAX);
	cr_assert_str_eq(err, "upstream: 127.0.0.1:2525 is also our listen address 127.0.0.1:2525 "
			      "(mail loop)");

	struct config d = fresh();
	config_begin_layer(&d);
	cr_assert_eq(set(&d, "listen", "*:2526"), 0);
	cr_assert_eq(config_finish(&d, err, sizeof(err)), -SLUICE_ESYNTAX, "wildcard + loopback");

	struct config e = fresh();
	config_begin_layer(&e);
	cr_assert_eq(set(&e, "listen", "[::]:2526"), 0);
	cr_assert_eq(config_finish(&e, err, sizeof(err)), -SLUICE_ESYNTAX, "[::] takes IPv4 too");

	struct config f = fresh();
	config_begin_layer(&f);
	cr_assert_eq(set(&f, "listen", "*:25"), 0);
	cr_assert_eq(set(&f, "upstream", "192.0.2.7:25"), 0);
	cr_assert_eq(config_finish(&f, err, sizeof(err)), 0, "remote upstream: %s", err);
}

Test(config, finish_limits_receive_memory)
{
	struct config c = fresh();

	cr_assert_eq(set(&c, "recv-buffer-size", "1M"), 0);
	cr_assert_eq(set(&c, "recv-buffers", "1024"), 0);
	cr_assert_eq(config_finish(&c, err, sizeof(err)), 0, "exactly 1 GiB: %s", err);
	cr_assert_eq(set(&c, "recv-buffers", "2048"), 0);
	cr_assert_eq(config_finish(&c, err, sizeof(err)), -ERANGE);
	cr_assert_str_eq(err, "recv-buffer-size * recv-buffers = 2147483648 bytes per shard, "
			      "more than 1073741824");
}

/* ---- value parsers ---- */

Test(config, parse_size_table)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t v;
	} rows[] = {
	    {"0", 0, 0},
	    {"1", 0, 1},
	    {"1023", 0, 1023},
	    {"1k", 0, 1024},
	    {"1K", 0, 1024},
	    {"16k", 0, 16384},
	    {"25M", 0, 26214400},
	    {"25m", 0, 26214400},
	    {"1G", 0, 1073741824},
	    {"007", 0, 7},
	    {"18446744073709551615", 0, UINT64_MAX},
	    {"18446744073709551616", -ERANGE, 0},
	    {"17179869183G", 0, 17179869183ull << 30},
	    {"17179869184G", -ERANGE, 0},
	    {"", -SLUICE_ESYNTAX, 0},
	    {"k", -SLUICE_ESYNTAX, 0},
	    {"1kb", -SLUICE_ESYNTAX, 0},
	    {"1.5M", -SLUICE_ESYNTAX, 0},
	    {"-1", -SLUICE_ESYNTAX, 0},
	    {"+1", -SLUICE_ESYNTAX, 0},
	    {" 1", -SLUICE_ESYNTAX, 0},
	    {"1 ", -SLUICE_ESYNTAX, 0},
	    {"1T", -SLUICE_ESYNTAX, 0},
	    {"0x10", -SLUICE_ESYNTAX, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		uint64_t v = 12345;
		int rc = config_parse_size(rows[i].s, &v);

		cr_expect_eq(rc, rows[i].rc, "'%s': rc %d", rows[i].s, rc);
		cr_expect_eq(v, rc == 0 ? rows[i].v : 12345, "'%s': %llu", rows[i].s,
			     (unsigned long long)v);
	}
}

Test(config, parse_duration_table)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t ms;
	} rows[] = {
	    {"500ms", 0, 500},
	    {"30s", 0, 30000},
	    {"30", 0, 30000},
	    {"5m", 0, 300000},
	    {"1h", 0, 3600000},
	    {"0", 0, 0},
	    {"0ms", 0, 0},
	    {"18446744073709551615ms", 0, UINT64_MAX},
	    {"18446744073709551616ms", -ERANGE, 0},
	    {"18446744073709551s", 0, 18446744073709551000ull},
	    {"18446744073709552s", -ERANGE, 0},
	    {"", -SLUICE_ESYNTAX, 0},
	    {"ms", -SLUICE_ESYNTAX, 0},
	    {"s", -SLUICE_ESYNTAX, 0},
	    {"1.5s", -SLUICE_ESYNTAX, 0},
	    {"1d", -SLUICE_ESYNTAX, 0},
	    {"1 s", -SLUICE_ESYNTAX, 0},
	    {"-1s", -SLUICE_ESYNTAX, 0},
	    {"1S", -SLUICE_ESYNTAX, 0},
	    {"1sec", -SLUICE_ESYNTAX, 0},
	    {"1mss", -SLUICE_ESYNTAX, 0},
	    {"1hm", -SLUICE_ESYNTAX, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		uint64_t v = 12345;
		int rc = config_parse_duration(rows[i].s, &v);

		cr_expect_eq(rc, rows[i].rc, "'%s': rc %d", rows[i].s, rc);
		cr_expect_eq(v, rc == 0 ? rows[i].ms : 12345, "'%s': %llu", rows[i].s,
			     (unsigned long long)v);
	}
}

Test(config, parse_hostport_table)
{
	static const struct {
		const char *s;
		int rc;
		int family;
		const char *addr;
		unsigned port;
	} rows[] = {
	    {"127.0.0.1:25", 0, AF_INET, "127.0.0.1", 25},
	    {"[::1]:25", 0, AF_INET6, "::1", 25},
	    {"*:25", 0, AF_INET, "0.0.0.0", 25},
	    {"[::]:25", 0, AF_INET6, "::", 25},
	    {"0.0.0.0:1", 0, AF_INET, "0.0.0.0", 1},
	    {"10.1.2.3:65535", 0, AF_INET, "10.1.2.3", 65535},
	    {"[2001:db8::1]:2525", 0, AF_INET6, "2001:db8::1", 2525},
	    {"[::ffff:127.0.0.1]:25", 0, AF_INET6, "::ffff:127.0.0.1", 25},
	    {"127.0.0.1:0", -ERANGE, 0, NULL, 0},
	    {"127.0.0.1:65536", -ERANGE, 0, NULL, 0},
	    {"127.0.0.1:99999999999999999999999", -ERANGE, 0, NULL, 0},
	    {"127.0.0.1", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"127.0.0.1:", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {":25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"::1:25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"[::1]25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"[::1", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"[]:25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"[127.0.0.1]:25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"127.0.0.1:25x", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"127.0.0.1:-1", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"127.0.0.1: 25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"256.0.0.1:25", -SLUICE_ESYNTAX, 0, NULL, 0},
	    {"localhost:25", -SLUICE_ESYNTAX, 0, NULL, 0}, /* names need allow_name */
	    {"*:0", -ERANGE, 0, NULL, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char a[INET6_ADDRSTRLEN] = "";
		int rc = config_parse_hostport(rows[i].s, &ss, &len, false);

		cr_expect_eq(rc, rows[i].rc, "'%s': rc %d", rows[i].s, rc);
		if (rc != 0 || rows[i].rc != 0)
			continue;
		cr_expect_eq(ss.ss_family, rows[i].family, "'%s'", rows[i].s);
		cr_expect_eq(port_of(&ss), rows[i].port, "'%s'", rows[i].s);
		if (ss.ss_family == AF_INET) {
			cr_expect_eq(len, sizeof(struct sockaddr_in));
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(a));
		} else {
			cr_expect_eq(len, sizeof(struct sockaddr_in6));
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(a));
		}
		cr_expect_str_eq(a, rows[i].addr, "'%s'", rows[i].s);
	}
}

Test(config, parse_hostport_resolves_names_when_allowed)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	int rc = config_parse_hostport("localhost:2526", &ss, &len, true);

	cr_assert_eq(rc, 0, "localhost must resolve (/etc/hosts)");
	cr_assert_eq(port_of(&ss), 2526);
	if (ss.ss_family == AF_INET)
		cr_assert_eq(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24, 127);
	else
		cr_assert(IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr));
	/* syntax is still checked before any lookup */
	cr_assert_eq(config_parse_hostport("bad_name:25", &ss, &len, true), -SLUICE_ESYNTAX);
	cr_assert_eq(config_parse_hostport("1.2.3:25", &ss, &len, true), -SLUICE_ESYNTAX);
	cr_assert_eq(config_parse_hostport("localhost:0", &ss, &len, true), -ERANGE);
}

/* ---- dump and the example file ---- */

Test(config, dump_round_trips)
{
	struct config c = fresh();
	char *text = NULL;
	size_t n = 0;
	FILE *f;

	config_begin_layer(&c);
	cr_assert_eq(config_load_string(&c,
					"listen [::1]:2600\n"
					"listen *:2601\n"
					"shards 3\n"
					"hostname mx.example.net\n"
					"upstream 192.0.2.5:25\n"
					"max-message-size 1048577\n"
					"max-recipients 7\n"
					"max-line-length 1000\n"
					"max-data-line-length 4000\n"
					"max-sessions 99\n"
					"max-connections-per-ip 0\n"
					"max-errors 2\n"
					"command-timeout 1500ms\n"
					"data-timeout 90s\n"
					"upstream-timeout 2h\n"
					"shutdown-timeout 0\n"
					"send-mode zerocopy\n"
					"recv-buffer-size 3k\n"
					"recv-buffers 8\n"
					"log-level warn\n",
					"in", err, sizeof(err)),
		     0, "%s", err);
	f = open_memstream(&text, &n);
	cr_assert_not_null(f);
	config_dump(&c, f);
	fclose(f);
	cr_assert(strstr(text, "\ncommand-timeout 1500ms\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\ndata-timeout 90s\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nupstream-timeout 2h\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nrecv-buffer-size 3k\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nmax-message-size 1048577\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nlisten *:2601\n") != NULL, "%s", text);

	struct config d = fresh();
	config_begin_layer(&d);
	cr_assert_eq(config_load_string(&d, text, "dump", err, sizeof(err)), 0, "%s\n%s", err,
		     text);
	assert_same_settings(&c, &d, text);
	free(text);
	text = NULL;
}

Test(config, dump_of_defaults_uses_units)
{
	struct config c = fresh();
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	config_dump(&c, f);
	fclose(f);
	cr_assert(strstr(text, "\nmax-message-size 25M\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\ncommand-timeout 5m\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nshutdown-timeout 30s\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nrecv-buffer-size 16k\n") != NULL, "%s", text);
	cr_assert(strstr(text, "\nlisten 127.0.0.1:2525\n") != NULL, "%s", text);
	for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++) {
		char k[64];
		snprintf(k, sizeof(k), "\n%s ", all_keys[i]);
		cr_expect(strstr(text, k) != NULL, "dump lacks %s", all_keys[i]);
	}
	free(text);
	text = NULL;
}

/*
 * tools/sluice.conf.example documents each key as a commented setting
 * "#key value" with its default: uncommenting all of them must load and give
 * back the defaults (hostname aside: the example cannot know the machine).
 */
Test(config, example_file_documents_every_key_with_its_default)
{
	FILE *f = fopen("tools/sluice.conf.example", "r");
	char line[512], *text;
	size_t used = 0;
	bool seen[ARRAY_SIZE(all_keys)] = {false};

	if (f == NULL)
		cr_skip_test("tools/sluice.conf.example not found (run from the repo root)");
	text = calloc(1, 65536);
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *p = line;

		if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z')
			p++;
		else if (p[0] == '#')
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++) {
			size_t kl = strlen(all_keys[i]);
			if (strncmp(p, all_keys[i], kl) == 0 && (p[kl] == ' ' || p[kl] == '\t'))
				seen[i] = true;
		}
		if (strncmp(p, "hostname", 8) == 0)
			continue;
		cr_assert_lt(used + strlen(p), 65535);
		memcpy(text + used, p, strlen(p));
		used += strlen(p);
	}
	fclose(f);
	for (size_t i = 0; i < ARRAY_SIZE(all_keys); i++)
		cr_expect(seen[i], "example lacks key %s", all_keys[i]);

	struct config c = fresh(), d = fresh();
	config_begin_layer(&c);
	cr_assert_eq(config_load_string(&c, text, "example", err, sizeof(err)), 0, "%s", err);
	assert_same_settings(&c, &d, "uncommented example vs defaults");
	free(text);
	text = NULL;
}

Test(config, dns_resolvers_validate_and_layer_like_listen)
{
	struct config c = fresh();

	cr_assert_eq(c.ndns, 0, "default: the system's resolvers");
	cr_assert_eq(c.mx_port, 25);
	config_begin_layer(&c);
	cr_assert_eq(config_load_string(&c, "dns 127.0.0.1:5353\ndns [::1]:53\ndns ::1\n", "f", err,
					sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(c.ndns, 3);
	cr_assert_str_eq(c.dns[0], "127.0.0.1:5353");
	cr_assert_str_eq(c.dns[2], "::1");
	config_begin_layer(&c);
	cr_assert_eq(set(&c, "dns", "192.0.2.53"), 0, "%s", err);
	cr_assert_eq(c.ndns, 1, "the command line's first dns replaced the file's list");
	cr_assert_lt(set(&c, "dns", "ns.example.com"), 0, "a name would need a resolver");
	cr_assert_not_null(strstr(err, "bad resolver 'ns.example.com'"), "%s", err);
	cr_assert_lt(set(&c, "dns", "127.0.0.1:0"), 0);
	cr_assert_lt(set(&c, "dns", "127.0.0.1:65536"), 0);
	for (int i = 1; i < CONFIG_MAX_DNS; i++)
		cr_assert_eq(set(&c, "dns", "127.0.0.1"), 0, "%s", err);
	cr_assert_lt(set(&c, "dns", "127.0.0.1"), 0);
	cr_assert_not_null(strstr(err, "too many resolvers (max 8)"), "%s", err);
	cr_assert_eq(set(&c, "mx-port", "2525"), 0, "%s", err);
	cr_assert_eq(c.mx_port, 2525);
	cr_assert_lt(set(&c, "mx-port", "0"), 0);
	cr_assert_lt(set(&c, "mx-port", "65536"), 0);

	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);

	config_dump(&c, f);
	fclose(f);
	cr_assert_not_null(strstr(text, "\ndns 192.0.2.53\ndns 127.0.0.1\n"), "%s", text);
	cr_assert_not_null(strstr(text, "\nmx-port 2525\n"), "%s", text);
	free(text);
	text = NULL;
}

Test(config, zones_path_is_kept_and_bounded)
{
	struct config c;
	char msg[256], path[CONFIG_MAX_PATH + 1];

	config_defaults(&c);
	cr_assert_str_eq(c.zones, "", "no zone file by default");
	cr_assert_eq(config_set(&c, "zones", "/etc/sluice/zones", "t:1", msg, sizeof(msg)), 0);
	cr_assert_str_eq(c.zones, "/etc/sluice/zones");
	memset(path, 'z', sizeof(path));
	path[CONFIG_MAX_PATH - 1] = '\0'; /* N-1 bytes: fits with its NUL */
	cr_assert_eq(config_set(&c, "zones", path, "t:2", msg, sizeof(msg)), 0);
	path[CONFIG_MAX_PATH - 1] = 'z';
	path[CONFIG_MAX_PATH] = '\0'; /* N bytes: one too many */
	cr_assert_eq(config_set(&c, "zones", path, "t:3", msg, sizeof(msg)), -ERANGE);
	cr_assert(strstr(msg, "t:3: zones: path longer than") != NULL, "%s", msg);
}

/* ---- MX delivery (issue 5): upstream none, tls-policy, timeouts, postmaster ---- */

Test(config, mx_delivery_keys)
{
	struct config c = fresh();

	cr_assert_not(c.mx_delivery, "the embedded default relays (make run's sink)");
	cr_assert_eq(c.tls_policy, CONFIG_TLS_VERIFY, "a broken certificate is never ignored");
	cr_assert_eq(set(&c, "upstream", "none"), 0, "%s", err);
	cr_assert(c.mx_delivery);
	cr_assert_eq(config_finish(&c, err, sizeof(err)), 0, "no relay host to resolve: %s", err);
	cr_assert_eq(set(&c, "upstream", "127.0.0.1:2526"), 0, "%s", err);
	cr_assert_not(c.mx_delivery, "a relay host set later wins");
	cr_assert_eq(set(&c, "tls-policy", "opportunistic"), 0, "%s", err);
	cr_assert_eq(c.tls_policy, CONFIG_TLS_OPPORTUNISTIC);
	cr_assert_eq(c.upstream_tls, CONFIG_TLS_NONE, "tls-policy is not upstream-tls");
	cr_assert_lt(set(&c, "tls-policy", "strict"), 0);
	cr_assert_eq(set(&c, "connect-timeout", "5s"), 0, "%s", err);
	cr_assert_eq(c.connect_timeout_ms, 5000);
	cr_assert_eq(set(&c, "dedup-window", "2h"), 0, "%s", err);
	cr_assert_eq(c.dedup_window_ms, 7200000);
	cr_assert_lt(set(&c, "dedup-window", "721h"), 0, "at most 30 days");
	cr_assert_eq(set(&c, "postmaster", "hostmaster@ops.example"), 0, "%s", err);
	cr_assert_str_eq(c.postmaster, "hostmaster@ops.example");
	cr_assert_lt(set(&c, "postmaster", "hostmaster"), 0);
	cr_assert_not_null(strstr(err, "not an address"), "%s", err);
	cr_assert_lt(set(&c, "postmaster", "@ops.example"), 0);
	cr_assert_lt(set(&c, "postmaster", "a b@ops.example"), 0);
}

/* ss = the IP text `ip` at `port` */
static struct sockaddr_storage
sa_of(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
	}
	return ss;
}

/* Addresses that lead back to our own listeners: the relay check and MX delivery's. */
Test(config, own_address)
{
	struct config c = fresh();
	struct sockaddr_storage ss;

	config_begin_layer(&c);
	cr_assert_eq(set(&c, "listen", "127.0.0.1:2525"), 0, "%s", err);
	cr_assert_eq(set(&c, "listen", "*:25"), 0, "%s", err);
	ss = sa_of("127.0.0.1", 2525);
	cr_assert_eq(config_own_address(&c, &ss), 0, "the same address and port");
	ss = sa_of("127.0.0.9", 25);
	cr_assert_eq(config_own_address(&c, &ss), 1, "loopback at the wildcard's port");
	ss = sa_of("127.0.0.1", 2526);
	cr_assert_eq(config_own_address(&c, &ss), -1, "another port");
	ss = sa_of("192.0.2.7", 2525);
	cr_assert_eq(config_own_address(&c, &ss), -1, "another address");
	ss = sa_of("::1", 25);
	cr_assert_eq(config_own_address(&c, &ss), -1, "an IPv4 wildcard does not take ::1");
}
