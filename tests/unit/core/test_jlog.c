/*
 * test_jlog.c -- core/jlog: exact lines, the escaping table, a JSON
 * validator over every output (including truncated ones at every buffer
 * size), timestamps against gmtime_r, and the rate limiter's windows.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/jlog.h"

#define TS0  "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"event\":\"e\""
#define TAIL ",\"truncated\":true}\n"

/* ---- a small, strict JSON validator (RFC 8259), written for these tests ---- */

struct jv {
	const unsigned char *p, *end;
};

static void
jv_ws(struct jv *v)
{
	while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r'))
		v->p++;
}

static bool
jv_lit(struct jv *v, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(v->end - v->p) < n || memcmp(v->p, s, n) != 0)
		return false;
	v->p += n;
	return true;
}

static bool
jv_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence by decoding the code point and checking it (RFC 3629 3). */
static bool
jv_utf8(struct jv *v)
{
	unsigned char c = *v->p;
	uint32_t cp, min;
	int n;

	if (c >= 0xc0 && c < 0xe0) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c < 0xf0) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c < 0xf8) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return false;
	}
	if (v->end - v->p <= n)
		return false;
	for (int i = 1; i <= n; i++) {
		if ((v->p[i] & 0xc0) != 0x80)
			return false;
		cp = cp << 6 | (v->p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return false;
	v->p += n + 1;
	return true;
}

static bool
jv_string(struct jv *v)
{
	if (!jv_lit(v, "\""))
		return false;
	while (v->p < v->end) {
		unsigned char c = *v->p;

		if (c == '"') {
			v->p++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (v->end - v->p < 2)
				return false;
			c = v->p[1];
			if (c == 'u') {
				if (v->end - v->p < 6)
					return false;
				for (int i = 2; i < 6; i++)
					if (!jv_hex(v->p[i]))
						return false;
				v->p += 6;
			} else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
				v->p += 2;
			} else {
				return false;
			}
		} else if (c >= 0x80) {
			if (!jv_utf8(v))
				return false;
		} else {
			v->p++;
		}
	}
	return false;
}

static bool
jv_digits(struct jv *v)
{
	const unsigned char *s = v->p;

	while (v->p < v->end && *v->p >= '0' && *v->p <= '9')
		v->p++;
	return v->p > s;
}

static bool
jv_number(struct jv *v)
{
	if (v->p < v->end && *v->p == '-')
		v->p++;
	if (v->p < v->end && *v->p == '0')
		v->p++;
	else if (!jv_digits(v))
		return false;
	if (v->p < v->end && *v->p == '.') {
		v->p++;
		if (!jv_digits(v))
			return false;
	}
	if (v->p < v->end && (*v->p == 'e' || *v->p == 'E')) {
		v->p++;
		if (v->p < v->end && (*v->p == '+' || *v->p == '-'))
			v->p++;
		if (!jv_digits(v))
			return false;
	}
	return true;
}

static bool jv_value(struct jv *v, int depth);

static bool
jv_object(struct jv *v, int depth)
{
	if (!jv_lit(v, "{"))
		return false;
	jv_ws(v);
	if (jv_lit(v, "}"))
		return true;
	for (int members = 0; members < 10000; members++) {
		jv_ws(v);
		if (!jv_string(v))
			return false;
		jv_ws(v);
		if (!jv_lit(v, ":") || !jv_value(v, depth + 1))
			return false;
		jv_ws(v);
		if (jv_lit(v, "}"))
			return true;
		if (!jv_lit(v, ","))
			return false;
	}
	return false;
}

static bool
jv_array(struct jv *v, int depth)
{
	if (!jv_lit(v, "["))
		return false;
	jv_ws(v);
	if (jv_lit(v, "]"))
		return true;
	for (int elements = 0; elements < 10000; elements++) {
		if (!jv_value(v, depth + 1))
			return false;
		jv_ws(v);
		if (jv_lit(v, "]"))
			return true;
		if (!jv_lit(v, ","))
			return false;
	}
	return false;
}

static bool
jv_value(struct jv *v, int depth)
{
	if (depth > 16)
		return false;
	jv_ws(v);
	if (v->p == v->end)
		return false;
	switch (*v->p) {
	case '{':
		return jv_object(v, depth);
	case '[':
		return jv_array(v, depth);
	case '"':
		return jv_string(v);
	case 't':
		return jv_lit(v, "true");
	case 'f':
		return jv_lit(v, "false");
	case 'n':
		return jv_lit(v, "null");
	default:
		return jv_number(v);
	}
}

/* A log line: one JSON object, then exactly one "\n", nothing else. */
static bool
json_line_valid(const char *s, size_t n)
{
	struct jv v = {(const unsigned char *)s, (const unsigned char *)s + n};

	if (n == 0 || s[n - 1] != '\n' || memchr(s, '\n', n - 1) != NULL)
		return false;
	v.end--;
	return jv_object(&v, 0) && v.p == v.end;
}

Test(jlog, validator_sanity)
{
	static const char *const good[] = {
	    "{}\n",
	    "{\"a\":1}\n",
	    "{\"a\":\"\\u00e9\\\"\",\"b\":-1.5e3,\"c\":[1]}\n",
	};
	static const char *const bad[] = {
	    "{\"a\":1}",
	    "{\"a\":1}\n\n",
	    "{\"a\":01}\n",
	    "{\"a\":\"\x01\"}\n",
	    "{\"a\":\"\xc3\"}\n",
	    "{\"a\":\"\xed\xa0\x80\"}\n",
	    "{\"a\":1,}\n",
	    "{\"a\" 1}\n",
	    "{\"a\":\"\\x\"}\n",
	    "{\"a\":1.}\n",
	    "{\"a\":\"\xc0\xaf\"}\n",
	    "{\"a\":[1,]}\n",
	    "{\"a\":[}\n",
	    "{\"a\":[1]\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		cr_expect(json_line_valid(good[i], strlen(good[i])), "good[%zu] refused", i);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		cr_expect_not(json_line_valid(bad[i], strlen(bad[i])), "bad[%zu] accepted", i);
}

/* ---- exact output ---- */

static const struct timespec t0 = {0, 0};

Test(jlog, minimal_line)
{
	char buf[256];
	struct jlog j;
	size_t n;

	jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
	n = jlog_end(&j);
	cr_assert_str_eq(buf, TS0 "}\n");
	cr_assert_eq(n, strlen(buf));
}

Test(jlog, every_value_type)
{
	char buf[512];
	struct jlog j;
	struct timespec t = {1795446245, 123456789}; /* 2026-11-23T15:04:05.123Z */

	jlog_begin_at(&j, buf, sizeof(buf), "tx", &t);
	jlog_cstr(&j, "from", "bob@example.org");
	jlog_str(&j, "nul", "a\0b", 3);
	jlog_cstr(&j, "none", NULL);
	jlog_u64(&j, "zero", 0);
	jlog_u64(&j, "max", UINT64_MAX);
	jlog_i64(&j, "neg", -1);
	jlog_i64(&j, "min", INT64_MIN);
	jlog_i64(&j, "pos", 42);
	jlog_bool(&j, "t", true);
	jlog_bool(&j, "f", false);
	jlog_null(&j, "n");
	jlog_ms(&j, "d", 1234567);
	size_t n = jlog_end(&j);

	cr_assert_str_eq(buf, "{\"ts\":\"2026-11-23T15:04:05.123Z\",\"event\":\"tx\","
			      "\"from\":\"bob@example.org\",\"nul\":\"a\\u0000b\",\"none\":null,"
			      "\"zero\":0,\"max\":18446744073709551615,\"neg\":-1,"
			      "\"min\":-9223372036854775808,\"pos\":42,\"t\":true,\"f\":false,"
			      "\"n\":null,\"d\":1.234}\n");
	cr_assert_eq(n, strlen(buf));
	cr_assert(json_line_valid(buf, n));
}

Test(jlog, ms_formatting)
{
	static const struct {
		uint64_t ns;
		const char *want;
	} rows[] = {
	    {0, "0.000"},
	    {999, "0.000"},
	    {1000, "0.001"},
	    {999999, "0.999"},
	    {1000000, "1.000"},
	    {1234567, "1.234"},
	    {60000000000ull, "60000.000"},
	    {UINT64_MAX, "18446744073709.551"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		char buf[256], want[256];
		struct jlog j;

		jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
		jlog_ms(&j, "d", rows[i].ns);
		jlog_end(&j);
		snprintf(want, sizeof(want), TS0 ",\"d\":%s}\n", rows[i].want);
		cr_expect_str_eq(buf, want, "ns %llu", (unsigned long long)rows[i].ns);
	}
}

/* ---- escaping ---- */

Test(jlog, escaping_table)
{
	static const struct {
		const char *label;
		const char *in;
		size_t n;
		const char *want;
	} rows[] = {
	    {"plain", "hello world", 11, "hello world"},
	    {"empty", "", 0, ""},
	    {"quote", "a\"b", 3, "a\\\"b"},
	    {"backslash", "a\\b", 3, "a\\\\b"},
	    {"slash is not escaped", "a/b", 3, "a/b"},
	    {"NUL", "\0", 1, "\\u0000"},
	    {"tab", "\t", 1, "\\u0009"},
	    {"LF", "\n", 1, "\\u000a"},
	    {"CR LF", "\r\n", 2, "\\u000d\\u000a"},
	    {"ESC", "\x1b[31m", 5, "\\u001b[31m"},
	    {"0x1f", "\x1f", 1, "\\u001f"},
	    {"space", " ", 1, " "},
	    {"tilde", "~", 1, "~"},
	    {"DEL", "\x7f", 1, "\\u007f"},
	    {"2-byte e-acute", "caf\xc3\xa9", 5, "caf\xc3\xa9"},
	    {"3-byte euro", "\xe2\x82\xac", 3, "\xe2\x82\xac"},
	    {"4-byte clef", "\xf0\x9d\x84\x9e", 4, "\xf0\x9d\x84\x9e"},
	    {"U+0080", "\xc2\x80", 2, "\xc2\x80"},
	    {"U+07FF", "\xdf\xbf", 2, "\xdf\xbf"},
	    {"U+0800", "\xe0\xa0\x80", 3, "\xe0\xa0\x80"},
	    {"U+D7FF", "\xed\x9f\xbf", 3, "\xed\x9f\xbf"},
	    {"U+E000", "\xee\x80\x80", 3, "\xee\x80\x80"},
	    {"U+FFFF", "\xef\xbf\xbf", 3, "\xef\xbf\xbf"},
	    {"U+10000", "\xf0\x90\x80\x80", 4, "\xf0\x90\x80\x80"},
	    {"U+10FFFF", "\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"},
	    {"latin-1 e-acute", "caf\xe9", 4, "caf\\u00e9"},
	    {"lone lead", "\xc3", 1, "\\u00c3"},
	    {"lead then ASCII", "\xc3(", 2, "\\u00c3("},
	    {"lone continuation", "\x80", 1, "\\u0080"},
	    {"overlong slash", "\xc0\xaf", 2, "\\u00c0\\u00af"},
	    {"overlong C1", "\xc1\xbf", 2, "\\u00c1\\u00bf"},
	    {"overlong 3-byte", "\xe0\x80\xaf", 3, "\\u00e0\\u0080\\u00af"},
	    {"overlong 4-byte", "\xf0\x8f\xbf\xbf", 4, "\\u00f0\\u008f\\u00bf\\u00bf"},
	    {"surrogate D800", "\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080"},
	    {"above 10FFFF", "\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080"},
	    {"F5", "\xf5\x80\x80\x80", 4, "\\u00f5\\u0080\\u0080\\u0080"},
	    {"FF", "\xff", 1, "\\u00ff"},
	    {"FE", "\xfe", 1, "\\u00fe"},
	    {"truncated euro", "\xe2\x82", 2, "\\u00e2\\u0082"},
	    {"truncated euro then ASCII", "\xe2\x82x", 3, "\\u00e2\\u0082x"},
	    {"truncated clef at end", "a\xf0\x9d\x84", 4, "a\\u00f0\\u009d\\u0084"},
	    {"valid after invalid", "\xff\xc3\xa9", 3, "\\u00ff\xc3\xa9"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		char buf[512], want[512];
		struct jlog j;
		size_t n;

		jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
		jlog_str(&j, "v", rows[i].in, rows[i].n);
		n = jlog_end(&j);
		snprintf(want, sizeof(want), TS0 ",\"v\":\"%s\"}\n", rows[i].want);
		cr_expect_str_eq(buf, want, "%s", rows[i].label);
		cr_expect(json_line_valid(buf, n), "%s: not valid JSON", rows[i].label);
	}
}

Test(jlog, every_single_byte_gives_valid_json)
{
	for (unsigned b = 0; b < 256; b++) {
		char buf[256], in[3] = {'x', (char)b, 'y'};
		struct jlog j;
		size_t n;

		jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
		jlog_str(&j, "v", in, sizeof(in));
		n = jlog_end(&j);
		cr_expect(json_line_valid(buf, n), "byte 0x%02x: %s", b, buf);
		cr_expect_not(j.overflow);
	}
}

Test(jlog, every_byte_pair_gives_valid_json)
{
	for (unsigned a = 0x80; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			char buf[256], in[2] = {(char)a, (char)b};
			struct jlog j;
			size_t n;

			jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
			jlog_str(&j, "v", in, sizeof(in));
			n = jlog_end(&j);
			if (!json_line_valid(buf, n))
				cr_assert_fail("bytes %02x %02x: %s", a, b, buf);
		}
	}
}

/* ---- overflow ---- */

Test(jlog, overflow_drops_whole_members_after_the_first)
{
	char buf[JLOG_MIN_CAP];
	struct jlog j;
	char big[200];
	size_t n;

	memset(big, 'a', sizeof(big));
	jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
	jlog_u64(&j, "n", 7);
	jlog_str(&j, "big", big, sizeof(big));
	cr_assert(j.overflow);
	jlog_u64(&j, "later", 1);
	n = jlog_end(&j);
	cr_assert_lt(n, sizeof(buf));
	cr_assert_eq(buf[n], '\0');
	cr_assert(json_line_valid(buf, n), "%s", buf);
	cr_assert(strstr(buf, "\"later\"") == NULL, "nothing after an overflow: %s", buf);
	cr_assert(strncmp(buf, TS0 ",\"n\":7,\"big\":\"aaa", strlen(TS0) + 16) == 0, "%s", buf);
	cr_assert_str_eq(buf + n - strlen(TAIL), TAIL);
	/* the cut string uses all the room there was: exactly JLOG_RESERVE is left unused */
	cr_assert_eq(n, sizeof(buf) - JLOG_RESERVE + strlen(TAIL));
}

Test(jlog, number_that_does_not_fit_is_dropped_whole)
{
	char buf[JLOG_MIN_CAP];
	struct jlog j;
	size_t n;

	jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
	/* fill to leave exactly 10 bytes of room: ,"m": + 20 digits does not fit */
	size_t room = sizeof(buf) - JLOG_RESERVE - j.len;
	char pad[128];
	memset(pad, 'p', sizeof(pad));
	jlog_str(&j, "p", pad, room - 10 - 7); /* ,"p":"" is 6 bytes + value */
	cr_assert_not(j.overflow, "%zu %s", room, buf);
	size_t before = j.len;
	jlog_u64(&j, "m", UINT64_MAX);
	cr_assert(j.overflow);
	cr_assert_eq(j.len, before, "no partial number");
	n = jlog_end(&j);
	cr_assert(json_line_valid(buf, n), "%s", buf);
	cr_assert(strstr(buf, "\"m\"") == NULL);
}

/* A fixed sequence of members, written into buffers of every size. */
static size_t
build(char *buf, size_t cap, bool *overflow)
{
	static const char text[] = "ab\"c\\d \xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\x01\xff tail";
	static const char rcpts[] = "a@x.example\0b\"@y.example\0\xc3\xa9@z.example\0";
	struct jlog j;
	struct timespec t = {1700000000, 999000000};

	jlog_begin_at(&j, buf, cap, "session", &t);
	jlog_cstr(&j, "client", "192.0.2.1:4711");
	jlog_str(&j, "helo", text, sizeof(text) - 1);
	jlog_u64(&j, "bytes", 123456789);
	jlog_bool(&j, "tls", false);
	jlog_ms(&j, "dur", 987654321);
	jlog_i64(&j, "rc", -42);
	jlog_null(&j, "err");
	jlog_strv(&j, "rcpts", rcpts, sizeof(rcpts) - 1);
	jlog_str(&j, "helo2", text, sizeof(text) - 1);
	jlog_cstr(&j, "reason", "quit");
	*overflow = j.overflow;
	return jlog_end(&j);
}

Test(jlog, truncation_at_every_buffer_size_stays_valid)
{
	char full[1024], buf[1024 + 64];
	bool ovf;
	size_t fn = build(full, sizeof(full), &ovf);
	size_t tl = strlen(TAIL);

	cr_assert_not(ovf);
	cr_assert(json_line_valid(full, fn), "%s", full);
	for (size_t cap = JLOG_MIN_CAP; cap <= fn + JLOG_RESERVE + 2; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		size_t n = build(buf, cap, &ovf);

		cr_assert_lt(n, cap, "cap %zu", cap);
		cr_assert_eq(buf[n], '\0', "cap %zu", cap);
		cr_assert_eq(strlen(buf), n, "cap %zu", cap);
		for (size_t i = cap; i < sizeof(buf); i++)
			cr_assert_eq((unsigned char)buf[i], 0xa5, "cap %zu: write past cap", cap);
		cr_assert(json_line_valid(buf, n), "cap %zu: %s", cap, buf);
		if (!ovf) {
			cr_assert_str_eq(buf, full, "cap %zu", cap);
			continue;
		}
		cr_assert_geq(n, tl);
		cr_assert_str_eq(buf + n - tl, TAIL, "cap %zu", cap);
		/* what precedes the tail is a prefix of the full line, or one with a
		 * string cut and closed by '"', or a list cut and closed by ']' */
		size_t body = n - tl;
		bool prefix = memcmp(buf, full, body) == 0;
		bool cut = body > 0 && (buf[body - 1] == '"' || buf[body - 1] == ']') &&
			   memcmp(buf, full, body - 1) == 0;
		cr_assert(prefix || cut, "cap %zu: %s", cap, buf);
	}
}

Test(jlog, strv_lists)
{
	static const struct {
		const char *label;
		const char *in;
		size_t n;
		const char *want;
	} rows[] = {
	    {"empty", "", 0, "[]"},
	    {"one, no final NUL", "a@x", 3, "[\"a@x\"]"},
	    {"one, final NUL", "a@x\0", 4, "[\"a@x\"]"},
	    {"two", "a\0b\0", 4, "[\"a\",\"b\"]"},
	    {"two, no final NUL", "a\0b", 3, "[\"a\",\"b\"]"},
	    {"empty element", "a\0\0b", 4, "[\"a\",\"\",\"b\"]"},
	    {"escapes inside", "q\"\0\x01\xff", 5, "[\"q\\\"\",\"\\u0001\\u00ff\"]"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		char buf[256], want[256];
		struct jlog j;
		size_t n;

		jlog_begin_at(&j, buf, sizeof(buf), "e", &t0);
		jlog_strv(&j, "v", rows[i].in, rows[i].n);
		n = jlog_end(&j);
		snprintf(want, sizeof(want), TS0 ",\"v\":%s}\n", rows[i].want);
		cr_expect_str_eq(buf, want, "%s", rows[i].label);
		cr_expect(json_line_valid(buf, n), "%s: not valid JSON", rows[i].label);
	}
}

Test(jlog, strv_drops_elements_that_do_not_fit_whole)
{
	char list[1024];
	size_t len = 0;

	for (int i = 0; i < 40; i++)
		len +=
		    (size_t)snprintf(list + len, sizeof(list) - len, "rcpt%02d@example.com", i) + 1;
	for (size_t cap = JLOG_MIN_CAP; cap < 1000; cap++) {
		char buf[1024];
		struct jlog j;
		size_t n;

		jlog_begin_at(&j, buf, cap, "e", &t0);
		jlog_strv(&j, "rcpts", list, len);
		n = jlog_end(&j);
		cr_assert_lt(n, cap);
		cr_assert(json_line_valid(buf, n), "cap %zu: %s", cap, buf);
		/* every element present is whole */
		const char *list_start = strstr(buf, "\"rcpts\":[");
		if (list_start == NULL) {
			cr_assert(j.overflow, "cap %zu: member dropped only on overflow", cap);
			continue;
		}
		for (const char *p = strstr(list_start + 9, "\"rcpt"); p != NULL;
		     p = strstr(p + 1, "\"rcpt"))
			cr_assert(strncmp(p + 7, "@example.com\"", 13) == 0, "cap %zu: %s", cap, p);
		cr_assert_eq(j.overflow, strstr(buf, "rcpt39@") == NULL, "cap %zu", cap);
	}
}

Test(jlog, event_name_is_escaped)
{
	char buf[256];
	struct jlog j;

	jlog_begin_at(&j, buf, sizeof(buf), "a\"b", &t0);
	jlog_end(&j);
	cr_assert_str_eq(buf, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"event\":\"a\\\"b\"}\n");
}

/* ---- timestamps ---- */

Test(jlog, timestamp_known_values)
{
	static const struct {
		time_t s;
		long ns;
		const char *want;
	} rows[] = {
	    {0, 0, "1970-01-01T00:00:00.000Z"},
	    {1795446245, 123999999, "2026-11-23T15:04:05.123Z"},
	    {1709208000, 999000000, "2024-02-29T12:00:00.999Z"},
	    {951782400, 0, "2000-02-29T00:00:00.000Z"},
	    {951868800, 0, "2000-03-01T00:00:00.000Z"},
	    {4107542400, 0, "2100-03-01T00:00:00.000Z"},
	    {253402300799, 1000000, "9999-12-31T23:59:59.001Z"},
	    {253402300800, 0, "9999-12-31T23:59:59.999Z"}, /* clamped */
	    {-1, 500000000, "1970-01-01T00:00:00.000Z"},   /* clamped */
	    {5, 1000000000, "1970-01-01T00:00:05.000Z"},   /* bad ns ignored */
	};
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		struct timespec t = {rows[i].s, rows[i].ns};
		char out[JLOG_TS_LEN + 1];

		jlog_format_ts(out, &t);
		cr_expect_str_eq(out, rows[i].want, "row %zu", i);
	}
}

Test(jlog, timestamp_matches_gmtime_over_four_centuries)
{
	/* a step that is not a whole number of days or hours walks every field */
	for (int64_t s = 0; s < 13000000000; s += 86400 * 367 / 10 + 3607) {
		struct timespec t = {(time_t)s, 456000000};
		struct tm tm;
		char want[64], got[JLOG_TS_LEN + 1];
		time_t tt = (time_t)s;

		cr_assert_not_null(gmtime_r(&tt, &tm));
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.456Z", &tm);
		jlog_format_ts(got, &t);
		if (strcmp(got, want) != 0)
			cr_assert_fail("t=%lld: got %s want %s", (long long)s, got, want);
	}
}

Test(jlog, begin_uses_the_wall_clock)
{
	char buf[256];
	struct jlog j;
	time_t before = time(NULL);
	struct tm tm;
	char year[8];

	jlog_begin(&j, buf, sizeof(buf), "start");
	size_t n = jlog_end(&j);
	cr_assert(json_line_valid(buf, n), "%s", buf);
	gmtime_r(&before, &tm);
	strftime(year, sizeof(year), "%Y-", &tm);
	cr_assert(strncmp(buf + 7, year, 5) == 0, "%s", buf);
	cr_assert(strstr(buf, "\"event\":\"start\"}") != NULL);
}

/* ---- rate limiter ---- */

Test(ratelimit, burst_per_window_and_suppressed_count)
{
	const uint64_t s = 1000000000;
	struct ratelimit r = RATELIMIT_INIT(s, 3);

	cr_assert(ratelimit_allow(&r, 10 * s));
	cr_assert(ratelimit_allow(&r, 10 * s + 1));
	cr_assert(ratelimit_allow(&r, 10 * s + 2));
	cr_assert_not(ratelimit_allow(&r, 10 * s + 3));
	cr_assert_not(ratelimit_allow(&r, 11 * s - 1), "last ns of the window");
	cr_assert_eq(r.suppressed, 2);
	cr_assert(ratelimit_allow(&r, 11 * s), "window boundary starts a new window");
	cr_assert_eq(ratelimit_take_suppressed(&r), 2);
	cr_assert_eq(ratelimit_take_suppressed(&r), 0);
	cr_assert(ratelimit_allow(&r, 11 * s + 5));
	cr_assert(ratelimit_allow(&r, 11 * s + 6));
	cr_assert_not(ratelimit_allow(&r, 11 * s + 7));
	cr_assert_eq(ratelimit_take_suppressed(&r), 1);
}

Test(ratelimit, window_starts_at_first_event_not_on_a_grid)
{
	const uint64_t s = 1000000000;
	struct ratelimit r = RATELIMIT_INIT(s, 1);

	cr_assert(ratelimit_allow(&r, 5 * s + s / 2));
	cr_assert_not(ratelimit_allow(&r, 6 * s + s / 4), "within 1s of the first event");
	cr_assert(ratelimit_allow(&r, 6 * s + s / 2));
}

Test(ratelimit, clock_going_backwards_starts_a_new_window)
{
	struct ratelimit r = RATELIMIT_INIT(1000, 1);

	cr_assert(ratelimit_allow(&r, 5000));
	cr_assert_not(ratelimit_allow(&r, 5001));
	cr_assert(ratelimit_allow(&r, 4000));
	cr_assert_not(ratelimit_allow(&r, 4001));
}

Test(ratelimit, burst_zero_and_window_zero)
{
	struct ratelimit none = RATELIMIT_INIT(1000, 0);
	struct ratelimit every = RATELIMIT_INIT(0, 1);

	for (uint64_t t = 0; t < 100; t++) {
		cr_assert_not(ratelimit_allow(&none, t * 10000));
		cr_assert(ratelimit_allow(&every, t));
		cr_assert(ratelimit_allow(&every, t), "same instant, new window");
	}
	cr_assert_eq(ratelimit_take_suppressed(&none), 100);
}

Test(ratelimit, sustained_rate_is_burst_per_window)
{
	const uint64_t ms = 1000000;
	struct ratelimit r = RATELIMIT_INIT(1000 * ms, 5);
	unsigned allowed = 0;

	/* one event per ms for 10 s: 10 windows of 5 */
	for (uint64_t t = 0; t < 10000; t++)
		allowed += ratelimit_allow(&r, 1000000 * ms + t * ms);
	cr_assert_eq(allowed, 50);
	cr_assert_eq(ratelimit_take_suppressed(&r), 10000 - 50);
}
