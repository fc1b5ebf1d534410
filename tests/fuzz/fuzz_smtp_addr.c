/*
 * fuzz_smtp_addr.c -- libFuzzer target for proto/smtp_addr.c.
 *
 * Input: byte 0 bit 0 is allow_utf8, the rest is the Mailbox text (what
 * smtp_cmd finds between the angle brackets). Oracles on success:
 *   - local = p[0..l) with p[l] == '@', domain = p[l+1..n): the spans
 *     tile the input; l <= 64, the domain <= 255 octets;
 *   - quoted iff p[0] is '"'; literal iff the domain starts with '[', and
 *     then smtp_addr_is_literal agrees, else smtp_addr_is_domain does;
 *   - utf8 iff some octet >= 0x80, which needs allow_utf8; every such octet
 *     starts or continues a sequence smtp_addr_utf8_len accepts;
 *   - what parses without SMTPUTF8 parses identically with it;
 *   - "postmaster" alone never parses (it has no '@').
 * The predicates also run on the whole input: smtp_addr_utf8_len is 0 or
 * 2..4 and fits, a domain without SMTPUTF8 is one with it too, a literal is
 * bracketed and <= 255 octets.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "proto/smtp_addr.h"
#include "tests/fuzz/fuzz.h"

static void
check_ok(const char *p, size_t n, bool utf8, const struct smtp_addr *a)
{
	size_t l = a->local.len;
	FUZZ_CHECK(a->local.off == 0 && l > 0 && l < n && p[l] == '@');
	FUZZ_CHECK(l <= SMTP_ADDR_MAX_LOCAL);
	FUZZ_CHECK(a->domain.off == l + 1 && (size_t)a->domain.off + a->domain.len == n);
	FUZZ_CHECK(a->domain.len > 0 && a->domain.len <= SMTP_ADDR_MAX_DOMAIN);
	FUZZ_CHECK(a->quoted == (p[0] == '"'));
	if (a->quoted)
		FUZZ_CHECK(l >= 2 && p[l - 1] == '"');
	const char *d = p + a->domain.off;
	FUZZ_CHECK(a->literal == (d[0] == '['));
	if (a->literal)
		FUZZ_CHECK(smtp_addr_is_literal(d, a->domain.len));
	else
		FUZZ_CHECK(smtp_addr_is_domain(d, a->domain.len, utf8));
	bool high = false;
	for (size_t i = 0; i < n;) {
		if ((uint8_t)p[i] < 0x80) {
			i++;
			continue;
		}
		high = true;
		size_t k = smtp_addr_utf8_len(p + i, n - i);
		FUZZ_CHECK(k >= 2 && k <= 4 && k <= n - i); /* well-formed UTF-8 only */
		i += k;
	}
	FUZZ_CHECK(a->utf8 == high);
	FUZZ_CHECK(utf8 || !high);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool utf8 = data[0] & 1;
	size_t n = size - 1;
	char *p = fuzz_dup(data + 1, n);

	struct smtp_addr a, b;
	int rc = smtp_addr_parse(p, n, utf8, &a);
	FUZZ_CHECK(rc == 0 || rc == -SLUICE_ESYNTAX || rc == -SLUICE_ELIMIT);
	if (rc == 0)
		check_ok(p, n, utf8, &a);
	if (rc == 0 && !utf8) {
		FUZZ_CHECK(smtp_addr_parse(p, n, true, &b) == 0);
		FUZZ_CHECK(memcmp(&a.local, &b.local, sizeof(a.local)) == 0);
		FUZZ_CHECK(memcmp(&a.domain, &b.domain, sizeof(a.domain)) == 0);
		FUZZ_CHECK(a.quoted == b.quoted && a.utf8 == b.utf8 && a.literal == b.literal);
	}
	if (smtp_addr_is_postmaster(p, n))
		FUZZ_CHECK(rc != 0 && n == 10);

	if (smtp_addr_is_domain(p, n, false))
		FUZZ_CHECK(smtp_addr_is_domain(p, n, true));
	if (smtp_addr_is_domain(p, n, utf8))
		FUZZ_CHECK(n > 0 && n <= SMTP_ADDR_MAX_DOMAIN && p[0] != '.' && p[n - 1] != '.' &&
			   p[0] != '-' && p[n - 1] != '-');
	if (smtp_addr_is_literal(p, n))
		FUZZ_CHECK(n >= 3 && n <= SMTP_ADDR_MAX_DOMAIN && p[0] == '[' && p[n - 1] == ']');
	for (size_t i = 0; i < n; i++) {
		size_t k = smtp_addr_utf8_len(p + i, n - i);
		FUZZ_CHECK(k == 0 || (k >= 2 && k <= 4 && k <= n - i));
		FUZZ_CHECK(k == 0 || (uint8_t)p[i] >= 0xc2);
	}
	free(p);
	return 0;
}
