/*
 * fuzz_smtp_cmd.c -- libFuzzer target for proto/smtp_cmd.c.
 *
 * Input: one command line without CRLF (what smtp_line hands over). Oracles:
 *   - the return is 0 with reply NULL, or -SLUICE_ESYNTAX / -SLUICE_ELIMIT
 *     with a "5xy x.y.z text" reply;
 *   - every non-empty span (arg, path, local part, domain, parameter keys
 *     and values) lies inside the line; addr lies inside path, path inside
 *     arg, parameters after path; the argument has no trailing SP/HTAB;
 *   - a successful MAIL/RCPT path re-parses with smtp_addr_parse to the
 *     same result; BDAT sizes are within SMTP_BDAT_MAX_SIZE;
 *   - invariance: one more trailing SP, or the verb in upper case, gives
 *     the same verb, return code, reply and spans (the line is copied to a
 *     heap block of exactly its size each time, so over-reads trip ASan).
 * smtp_cmd_mail_params / smtp_cmd_rcpt_params run on every successful
 * MAIL / RCPT, and smtp_verb_name on every verb.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "proto/smtp_addr.h"
#include "proto/smtp_cmd.h"
#include "tests/fuzz/fuzz.h"

static bool
span_in(struct span s, size_t lo, size_t hi)
{
	return s.len == 0 || (s.off >= lo && (size_t)s.off + s.len <= hi);
}

static void
check_one(const char *line, size_t len, int rc, const struct smtp_cmd *c)
{
	FUZZ_CHECK(rc == 0 || rc == -SLUICE_ESYNTAX || rc == -SLUICE_ELIMIT);
	FUZZ_CHECK((rc == 0) == (c->reply == NULL));
	if (c->reply != NULL) {
		size_t rn = strlen(c->reply);
		FUZZ_CHECK(rn > 10 && c->reply[0] == '5' && c->reply[3] == ' ');
		FUZZ_CHECK(c->reply[4] == '5' && c->reply[5] == '.');
	}
	FUZZ_CHECK((unsigned)c->verb < SMTP_V__COUNT);
	FUZZ_CHECK(smtp_verb_name(c->verb) != NULL);
	FUZZ_CHECK(span_in(c->arg, 0, len));
	if (c->arg.len > 0) {
		char last = line[c->arg.off + c->arg.len - 1];
		FUZZ_CHECK(last != ' ' && last != '\t');
	}
	if (rc != 0)
		return;
	FUZZ_CHECK(c->verb != SMTP_V_UNKNOWN);
	size_t aend = (size_t)c->arg.off + c->arg.len;
	FUZZ_CHECK(span_in(c->path, c->arg.off, aend));
	FUZZ_CHECK(c->nparams <= SMTP_MAX_PARAMS);
	FUZZ_CHECK(c->bdat_size <= SMTP_BDAT_MAX_SIZE);
	if (c->verb != SMTP_V_MAIL && c->verb != SMTP_V_RCPT) {
		FUZZ_CHECK(c->path.len == 0 && c->nparams == 0 && !c->null_path);
		return;
	}
	size_t pend = (size_t)c->path.off + c->path.len;
	FUZZ_CHECK(line[pend] == '>'); /* the path is closed inside the argument */
	for (unsigned k = 0; k < c->nparams; k++) {
		const struct smtp_param *pm = &c->params[k];
		FUZZ_CHECK(pm->key.len > 0 && span_in(pm->key, pend + 1, aend));
		FUZZ_CHECK(pm->has_value == (pm->value.len > 0));
		FUZZ_CHECK(span_in(pm->value, pend + 1, aend));
		if (k > 0)
			FUZZ_CHECK(pm->key.off > c->params[k - 1].key.off);
	}
	if (c->null_path) {
		FUZZ_CHECK(c->verb == SMTP_V_MAIL && c->path.len == 0);
	} else if (c->postmaster) {
		FUZZ_CHECK(c->verb == SMTP_V_RCPT);
		FUZZ_CHECK(smtp_addr_is_postmaster(line + c->path.off, c->path.len));
	} else {
		FUZZ_CHECK(c->path.len > 0);
		FUZZ_CHECK(span_in(c->addr.local, c->path.off, pend));
		FUZZ_CHECK(span_in(c->addr.domain, c->path.off, pend));
		struct smtp_addr a;
		FUZZ_CHECK(smtp_addr_parse(line + c->path.off, c->path.len, true, &a) == 0);
		FUZZ_CHECK(a.local.off + c->path.off == c->addr.local.off);
		FUZZ_CHECK(a.local.len == c->addr.local.len);
		FUZZ_CHECK(a.domain.off + c->path.off == c->addr.domain.off);
		FUZZ_CHECK(a.domain.len == c->addr.domain.len);
		FUZZ_CHECK(a.utf8 == c->addr.utf8 && a.quoted == c->addr.quoted);
		FUZZ_CHECK(a.literal == c->addr.literal);
	}
	const char *reply = (const char *)1;
	if (c->verb == SMTP_V_MAIL) {
		struct smtp_mail_params mp;
		int r = smtp_cmd_mail_params(line, c, &mp, &reply);
		FUZZ_CHECK((r == 0) == (reply == NULL));
		if (r == 0)
			FUZZ_CHECK(mp.body != SMTP_BODY_BINARYMIME);
	} else {
		int r = smtp_cmd_rcpt_params(line, c, &reply);
		FUZZ_CHECK((r == 0) == (reply == NULL) && (r == 0) == (c->nparams == 0));
	}
}

static bool
span_eq(struct span a, struct span b)
{
	return a.len == b.len && (a.len == 0 || a.off == b.off);
}

static void
check_same(const struct smtp_cmd *a, int ra, const struct smtp_cmd *b, int rb)
{
	FUZZ_CHECK(ra == rb && a->verb == b->verb && a->reply == b->reply);
	FUZZ_CHECK(span_eq(a->arg, b->arg) && span_eq(a->path, b->path));
	FUZZ_CHECK(a->null_path == b->null_path && a->postmaster == b->postmaster);
	FUZZ_CHECK(a->bdat_size == b->bdat_size && a->bdat_last == b->bdat_last);
	FUZZ_CHECK(a->nparams == b->nparams);
	if (ra != 0)
		return;
	FUZZ_CHECK(span_eq(a->addr.local, b->addr.local));
	FUZZ_CHECK(span_eq(a->addr.domain, b->addr.domain));
	for (unsigned k = 0; k < a->nparams; k++) {
		FUZZ_CHECK(span_eq(a->params[k].key, b->params[k].key));
		FUZZ_CHECK(span_eq(a->params[k].value, b->params[k].value));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_cmd c1, c2; /* ~600 bytes each */
	char *line = fuzz_dup(data, size);
	int r1 = smtp_cmd_parse(line, size, &c1);
	check_one(line, size, r1, &c1);

	/* one more trailing SP changes nothing */
	char *sp = malloc(size + 1);
	if (sp == NULL)
		abort();
	memcpy(sp, data, size);
	sp[size] = ' ';
	int r2 = smtp_cmd_parse(sp, size + 1, &c2);
	check_one(sp, size + 1, r2, &c2);
	check_same(&c1, r1, &c2, r2);
	free(sp);

	/* the verb is case-insensitive */
	const char *end = memchr(line, ' ', size);
	size_t vlen = end ? (size_t)(end - line) : size;
	for (size_t i = 0; i < vlen; i++)
		if (line[i] >= 'a' && line[i] <= 'z')
			line[i] = (char)(line[i] - ('a' - 'A'));
	r2 = smtp_cmd_parse(line, size, &c2);
	check_one(line, size, r2, &c2);
	check_same(&c1, r1, &c2, r2);

	free(line);
	return 0;
}
