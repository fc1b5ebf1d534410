/*
 * test_tool_parse.c -- the load tools' command-line values
 * (tools/common/tool_parse): bounded integers, sizes and durations at
 * N-1/N/N+1 of every limit (the max argument, UINT64_MAX after a suffix),
 * strictness (no blanks, signs or trailing bytes), and host:port forms with
 * the port at 0/1 and 65535/65536.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "tools/common/tool_parse.h"

#define U64MAX UINT64_MAX

struct uint_case {
	const char *s; /* input */
	uint64_t max;  /* bound passed in */
	int rc;	       /* expected return */
	uint64_t out;  /* expected value when rc == 0 */
};

static const struct uint_case uint_cases[] = {
    {"0", 0, 0, 0},
    {"1", 0, -ERANGE, 0},
    {"9", 10, 0, 9},
    {"10", 10, 0, 10},
    {"11", 10, -ERANGE, 0},
    {"65534", 65535, 0, 65534},
    {"65535", 65535, 0, 65535},
    {"65536", 65535, -ERANGE, 0},
    {"007", 10, 0, 7},
    {"18446744073709551614", U64MAX, 0, U64MAX - 1},
    {"18446744073709551615", U64MAX, 0, U64MAX},
    {"18446744073709551616", U64MAX, -ERANGE, 0},
    {"99999999999999999999", U64MAX, -ERANGE, 0},
    {"18446744073709551615", U64MAX - 1, -ERANGE, 0},
    {"", 10, -EINVAL, 0},
    {"-1", 10, -EINVAL, 0},
    {"+1", 10, -EINVAL, 0},
    {" 1", 10, -EINVAL, 0},
    {"1 ", 10, -EINVAL, 0},
    {"1x", 10, -EINVAL, 0},
    {"0x1", 10, -EINVAL, 0},
    {"1.0", 10, -EINVAL, 0},
    {"1k", 10000, -EINVAL, 0},
};

Test(tool_parse, uint_limits_at_n_minus_1_n_and_n_plus_1)
{
	for (size_t i = 0; i < sizeof(uint_cases) / sizeof(uint_cases[0]); i++) {
		const struct uint_case *c = &uint_cases[i];
		uint64_t out = 0xdeadbeef;
		int rc = tool_parse_uint(c->s, c->max, &out);
		cr_expect_eq(rc, c->rc, "\"%s\" max %llu: rc %d, want %d", c->s,
			     (unsigned long long)c->max, rc, c->rc);
		if (c->rc == 0)
			cr_expect_eq(out, c->out, "\"%s\": %llu", c->s, (unsigned long long)out);
		else
			cr_expect_eq(out, 0xdeadbeef, "\"%s\": out written on error", c->s);
	}
}

struct num_case {
	const char *s; /* input */
	int rc;	       /* expected return */
	uint64_t out;  /* expected value when rc == 0 */
};

static const struct num_case size_cases[] = {
    {"0", 0, 0},
    {"1", 0, 1},
    {"1k", 0, 1024},
    {"1K", 0, 1024},
    {"2m", 0, 2ull << 20},
    {"2M", 0, 2ull << 20},
    {"3g", 0, 3ull << 30},
    {"3G", 0, 3ull << 30},
    {"0k", 0, 0},
    /* UINT64_MAX bare and after each suffix: N-1 / N fit, N+1 overflows */
    {"18446744073709551615", 0, U64MAX},
    {"18446744073709551616", -ERANGE, 0},
    {"18014398509481982k", 0, U64MAX - 2047},
    {"18014398509481983k", 0, U64MAX - 1023},
    {"18014398509481984k", -ERANGE, 0},
    {"17592186044414m", 0, U64MAX - (2ull << 20) + 1},
    {"17592186044415m", 0, U64MAX - (1ull << 20) + 1},
    {"17592186044416m", -ERANGE, 0},
    {"17179869182g", 0, U64MAX - (2ull << 30) + 1},
    {"17179869183g", 0, U64MAX - (1ull << 30) + 1},
    {"17179869184g", -ERANGE, 0},
    {"", -EINVAL, 0},
    {"k", -EINVAL, 0},
    {"1kb", -EINVAL, 0},
    {"1kk", -EINVAL, 0},
    {"1T", -EINVAL, 0},
    {"1.5k", -EINVAL, 0},
    {"1 k", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"+1", -EINVAL, 0},
};

static const struct num_case dur_cases[] = {
    {"0", 0, 0},
    {"2", 0, 2000000000ull},
    {"30s", 0, 30000000000ull},
    {"500ms", 0, 500000000ull},
    {"1ms", 0, 1000000ull},
    {"5m", 0, 300000000000ull},
    {"1h", 0, 3600000000000ull},
    /* the largest counts that fit in uint64 ns, and one more */
    {"18446744072", 0, 18446744072000000000ull},
    {"18446744073", 0, 18446744073000000000ull},
    {"18446744074", -ERANGE, 0},
    {"18446744073s", 0, 18446744073000000000ull},
    {"18446744074s", -ERANGE, 0},
    {"18446744073709ms", 0, 18446744073709000000ull},
    {"18446744073710ms", -ERANGE, 0},
    {"307445734m", 0, 18446744040000000000ull},
    {"307445735m", -ERANGE, 0},
    {"5124095h", 0, 18446742000000000000ull},
    {"5124096h", -ERANGE, 0},
    {"18446744073709551616", -ERANGE, 0},
    {"", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"ms", -EINVAL, 0},
    {"1.5s", -EINVAL, 0},
    {"1 s", -EINVAL, 0},
    {"1sec", -EINVAL, 0},
    {"1S", -EINVAL, 0},
    {"1d", -EINVAL, 0},
    {"1us", -EINVAL, 0},
    {"1mss", -EINVAL, 0},
    {"-1s", -EINVAL, 0},
};

static void
check_num(const struct num_case *cases, size_t n, int (*fn)(const char *, uint64_t *),
	  const char *what)
{
	for (size_t i = 0; i < n; i++) {
		const struct num_case *c = &cases[i];
		uint64_t out = 0xdeadbeef;
		int rc = fn(c->s, &out);
		cr_expect_eq(rc, c->rc, "%s \"%s\": rc %d, want %d", what, c->s, rc, c->rc);
		if (c->rc == 0 && rc == 0)
			cr_expect_eq(out, c->out, "%s \"%s\": %llu, want %llu", what, c->s,
				     (unsigned long long)out, (unsigned long long)c->out);
	}
}

Test(tool_parse, sizes_with_suffixes_and_overflow_at_every_suffix)
{
	check_num(size_cases, sizeof(size_cases) / sizeof(size_cases[0]), tool_parse_size, "size");
}

Test(tool_parse, durations_with_units_and_overflow_at_every_unit)
{
	check_num(dur_cases, sizeof(dur_cases) / sizeof(dur_cases[0]), tool_parse_dur, "dur");
}

struct addr_case {
	const char *s;	  /* input */
	int rc;		  /* expected return */
	int family;	  /* expected family when rc == 0 */
	const char *back; /* tool_parse_addr_str of the result */
};

static const struct addr_case addr_cases[] = {
    {"127.0.0.1:2526", 0, AF_INET, "127.0.0.1:2526"},
    {"[::1]:2526", 0, AF_INET6, "[::1]:2526"},
    {"localhost:2526", 0, AF_INET, "127.0.0.1:2526"},
    {"0.0.0.0:25", 0, AF_INET, "0.0.0.0:25"},
    {"[::ffff:127.0.0.1]:25", 0, AF_INET6, "[::ffff:127.0.0.1]:25"},
    {"[fe80::1:2]:25", 0, AF_INET6, "[fe80::1:2]:25"},
    /* port at the limits */
    {"127.0.0.1:0", -EINVAL, 0, NULL},
    {"127.0.0.1:1", 0, AF_INET, "127.0.0.1:1"},
    {"127.0.0.1:65534", 0, AF_INET, "127.0.0.1:65534"},
    {"127.0.0.1:65535", 0, AF_INET, "127.0.0.1:65535"},
    {"127.0.0.1:65536", -EINVAL, 0, NULL},
    {"[::1]:0", -EINVAL, 0, NULL},
    {"[::1]:65535", 0, AF_INET6, "[::1]:65535"},
    {"[::1]:65536", -EINVAL, 0, NULL},
    /* malformed */
    {"", -EINVAL, 0, NULL},
    {"127.0.0.1", -EINVAL, 0, NULL},
    {"127.0.0.1:", -EINVAL, 0, NULL},
    {":25", -EINVAL, 0, NULL},
    {"127.0.0.1:25x", -EINVAL, 0, NULL},
    {"127.0.0.1: 25", -EINVAL, 0, NULL},
    {"127.0.0.1:-1", -EINVAL, 0, NULL},
    {"256.0.0.1:25", -EINVAL, 0, NULL},
    {"127.0.0:25", -EINVAL, 0, NULL},
    {"::1:25", -EINVAL, 0, NULL},
    {"[::1]", -EINVAL, 0, NULL},
    {"[::1]25", -EINVAL, 0, NULL},
    {"[::1:25", -EINVAL, 0, NULL},
    {"[]:25", -EINVAL, 0, NULL},
    {"[127.0.0.1]:25", -EINVAL, 0, NULL},
    {"[localhost]:25", -EINVAL, 0, NULL},
    {"example.org:25", -EINVAL, 0, NULL},
    {"localhostx:25", -EINVAL, 0, NULL},
    {"[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:25", -EINVAL, 0, NULL},
};

Test(tool_parse, addresses_and_ports_at_0_1_65535_65536)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct sockaddr_storage ss;
		socklen_t len = 0;
		int rc = tool_parse_addr(c->s, &ss, &len);
		cr_expect_eq(rc, c->rc, "\"%s\": rc %d, want %d", c->s, rc, c->rc);
		if (c->rc != 0 || rc != 0)
			continue;
		cr_expect_eq(ss.ss_family, c->family, "\"%s\": family", c->s);
		cr_expect_eq(len,
			     c->family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6),
			     "\"%s\": len %u", c->s, (unsigned)len);
		char buf[64];
		cr_expect_str_eq(tool_parse_addr_str(&ss, buf, sizeof(buf)), c->back, "\"%s\"",
				 c->s);
	}
}

Test(tool_parse, port_is_stored_in_network_order)
{
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(tool_parse_addr("127.0.0.1:2526", &ss, &len), 0);
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&ss;
	cr_expect_eq(a4->sin_port, htons(2526));
	cr_expect_eq(a4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

Test(tool_parse, addr_str_truncates_to_cap)
{
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(tool_parse_addr("127.0.0.1:2526", &ss, &len), 0);
	/* cap = strlen - 1, strlen, strlen + 1 ("127.0.0.1:2526" is 14 bytes) */
	char buf[32];
	memset(buf, 'Z', sizeof(buf));
	cr_expect_str_eq(tool_parse_addr_str(&ss, buf, 14), "127.0.0.1:252");
	cr_expect_eq(buf[14], 'Z', "wrote past cap");
	cr_expect_str_eq(tool_parse_addr_str(&ss, buf, 15), "127.0.0.1:2526");
	cr_expect_str_eq(tool_parse_addr_str(&ss, buf, 16), "127.0.0.1:2526");
}
