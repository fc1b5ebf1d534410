/*
 * smtp_cmd.c -- pure SMTP command parser; see smtp_cmd.h.
 */
#include "proto/smtp_cmd.h"

#include <errno.h>
#include <string.h>

#include "core/check.h"
#include "core/err.h"

static const char R_UNKNOWN[] = "500 5.5.1 Command unrecognized";
static const char R_CTL[] = "500 5.5.2 Syntax error: invalid character";
static const char R_HELO[] = "501 5.5.4 Syntax: HELO hostname";
static const char R_EHLO[] = "501 5.5.4 Syntax: EHLO hostname";
static const char R_MAIL[] = "501 5.5.4 Syntax: MAIL FROM:<address>";
static const char R_RCPT[] = "501 5.5.4 Syntax: RCPT TO:<address>";
static const char R_SENDER[] = "501 5.1.7 Bad sender address syntax";
static const char R_RECIPIENT[] = "501 5.1.3 Bad recipient address syntax";
static const char R_NEED_UTF8[] = "553 5.6.7 Non-ASCII sender address requires SMTPUTF8";
static const char R_PARAMS[] = "501 5.5.4 Syntax error in parameters";
static const char R_TOO_MANY[] = "501 5.5.4 Too many parameters";
static const char R_DATA[] = "501 5.5.4 Syntax: DATA";
static const char R_RSET[] = "501 5.5.4 Syntax: RSET";
static const char R_QUIT[] = "501 5.5.4 Syntax: QUIT";
static const char R_STARTTLS[] = "501 5.5.4 Syntax: STARTTLS";
static const char R_BDAT[] = "501 5.5.4 Syntax: BDAT size [LAST]";
static const char R_AUTH[] = "501 5.5.4 Syntax: AUTH mechanism";
static const char R_SIZE[] = "501 5.5.4 Bad SIZE parameter";
static const char R_BODY[] = "501 5.5.4 Bad BODY parameter";
static const char R_UTF8[] = "501 5.5.4 Bad SMTPUTF8 parameter";
static const char R_UNSUPPORTED[] = "555 5.5.4 Unsupported parameter";

static const char *const verb_names[SMTP_V__COUNT] = {
    [SMTP_V_UNKNOWN] = "UNKNOWN", [SMTP_V_HELO] = "HELO",	  [SMTP_V_EHLO] = "EHLO",
    [SMTP_V_MAIL] = "MAIL",	  [SMTP_V_RCPT] = "RCPT",	  [SMTP_V_DATA] = "DATA",
    [SMTP_V_BDAT] = "BDAT",	  [SMTP_V_RSET] = "RSET",	  [SMTP_V_NOOP] = "NOOP",
    [SMTP_V_QUIT] = "QUIT",	  [SMTP_V_VRFY] = "VRFY",	  [SMTP_V_EXPN] = "EXPN",
    [SMTP_V_HELP] = "HELP",	  [SMTP_V_STARTTLS] = "STARTTLS", [SMTP_V_AUTH] = "AUTH",
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	if ((unsigned)v >= SMTP_V__COUNT)
		return "UNKNOWN";
	return verb_names[v];
}

#define K4(a, b, c, d)                                                                             \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* Four bytes, ASCII letters folded to lower case by OR 0x20. No non-letter
 * byte folds onto a letter, so comparing with an all-letter key is exact. */
static inline uint32_t
load4_lower(const char *p)
{
	const uint8_t *u = (const uint8_t *)p;
	return K4(u[0], u[1], u[2], u[3]) | 0x20202020u;
}

static enum smtp_verb
cmd_verb(const char *p, size_t n)
{
	if (n == 4) {
		switch (load4_lower(p)) {
		case K4('h', 'e', 'l', 'o'):
			return SMTP_V_HELO;
		case K4('e', 'h', 'l', 'o'):
			return SMTP_V_EHLO;
		case K4('m', 'a', 'i', 'l'):
			return SMTP_V_MAIL;
		case K4('r', 'c', 'p', 't'):
			return SMTP_V_RCPT;
		case K4('d', 'a', 't', 'a'):
			return SMTP_V_DATA;
		case K4('b', 'd', 'a', 't'):
			return SMTP_V_BDAT;
		case K4('r', 's', 'e', 't'):
			return SMTP_V_RSET;
		case K4('n', 'o', 'o', 'p'):
			return SMTP_V_NOOP;
		case K4('q', 'u', 'i', 't'):
			return SMTP_V_QUIT;
		case K4('v', 'r', 'f', 'y'):
			return SMTP_V_VRFY;
		case K4('e', 'x', 'p', 'n'):
			return SMTP_V_EXPN;
		case K4('h', 'e', 'l', 'p'):
			return SMTP_V_HELP;
		case K4('a', 'u', 't', 'h'):
			return SMTP_V_AUTH;
		default:
			return SMTP_V_UNKNOWN;
		}
	}
	if (n == 8 && load4_lower(p) == K4('s', 't', 'a', 'r') &&
	    load4_lower(p + 4) == K4('t', 't', 'l', 's'))
		return SMTP_V_STARTTLS;
	return SMTP_V_UNKNOWN;
}

/* Case-insensitive compare of p[0..n) with lower-case ASCII key k. */
static bool
ieq(const char *p, size_t n, const char *k, size_t kn)
{
	if (n != kn)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != k[i])
			return false;
	}
	return true;
}

#define IEQ_LIT(p, n, lit) ieq((p), (n), (lit), sizeof(lit) - 1)

static inline bool
is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 5321 esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531); the
 * UTF-8 is not validated here: values are interpreted by their keyword. */
static inline bool
is_esmtp_value(char c)
{
	uint8_t u = (uint8_t)c;
	return (u >= 33 && u <= 126 && u != '=') || u >= 0x80;
}

/* ESMTP parameters in line[i..end), i at the first byte after '>'. */
static int
cmd_params(const char *line, size_t i, size_t end, struct smtp_cmd *out)
{
	if (i == end)
		return 0;
	if (line[i] != ' ') {
		out->reply = out->verb == SMTP_V_MAIL ? R_MAIL : R_RCPT;
		return -SLUICE_ESYNTAX;
	}
	while (i < end) {
		if (line[i] == ' ') { /* lenient: runs of SP between parameters */
			i++;
			continue;
		}
		if (out->nparams == SMTP_MAX_PARAMS) {
			out->reply = R_TOO_MANY;
			return -SLUICE_ELIMIT;
		}
		struct smtp_param *pm = &out->params[out->nparams];
		size_t k = i;
		if (!is_alnum(line[i])) {
			out->reply = R_PARAMS;
			return -SLUICE_ESYNTAX;
		}
		while (i < end && (is_alnum(line[i]) || line[i] == '-'))
			i++;
		pm->key = (struct span){(uint32_t)k, (uint32_t)(i - k)};
		pm->value = (struct span){0, 0};
		pm->has_value = false;
		if (i < end && line[i] == '=') {
			size_t v = ++i;
			while (i < end && is_esmtp_value(line[i]))
				i++;
			if (i == v) {
				out->reply = R_PARAMS;
				return -SLUICE_ESYNTAX;
			}
			pm->value = (struct span){(uint32_t)v, (uint32_t)(i - v)};
			pm->has_value = true;
		}
		if (i < end && line[i] != ' ') {
			out->reply = R_PARAMS;
			return -SLUICE_ESYNTAX;
		}
		out->nparams++;
	}
	return 0;
}

/* MAIL FROM:<...> / RCPT TO:<...>; arg = out->arg, prefix "from:" or "to:". */
static int
cmd_path(const char *line, struct smtp_cmd *out, const char *prefix, size_t plen)
{
	bool mail = out->verb == SMTP_V_MAIL;
	const char *r_syntax = mail ? R_MAIL : R_RCPT;
	const char *r_addr = mail ? R_SENDER : R_RECIPIENT;
	size_t i = out->arg.off, end = (size_t)out->arg.off + out->arg.len;

	if (out->arg.len < plen || !ieq(line + i, plen, prefix, plen))
		goto syntax;
	i += plen;
	if (i < end && line[i] == ' ') /* "MAIL FROM: <a@b>": common, tolerated */
		i++;
	if (i >= end || line[i] != '<')
		goto syntax;
	i++;

	/* Find the closing '>' outside a quoted local part. */
	size_t gt = i;
	bool quoted = false;
	while (gt < end) {
		char c = line[gt];
		if (quoted && c == '\\' && gt + 1 < end)
			gt++;
		else if (c == '"')
			quoted = !quoted;
		else if (!quoted && c == '>')
			break;
		gt++;
	}
	if (gt >= end)
		goto syntax;

	if (gt == i) {
		if (!mail) {
			out->reply = r_addr; /* RCPT TO:<> */
			return -SLUICE_ESYNTAX;
		}
		out->null_path = true;
		out->path = (struct span){(uint32_t)i, 0};
		return cmd_params(line, gt + 1, end, out);
	}

	/* RFC 5321 4.1.2 / appendix C: A-d-l ":" Mailbox; the route is ignored. */
	if (line[i] == '@') {
		for (;;) {
			size_t d = ++i; /* past '@' */
			while (i < gt && line[i] != ',' && line[i] != ':')
				i++;
			if (i >= gt || !smtp_addr_is_domain(line + d, i - d, false)) {
				out->reply = r_addr;
				return -SLUICE_ESYNTAX;
			}
			if (line[i] == ':') {
				i++;
				break;
			}
			i++; /* ',' */
			if (i >= gt || line[i] != '@') {
				out->reply = r_addr;
				return -SLUICE_ESYNTAX;
			}
		}
	}

	size_t mlen = gt - i;
	out->path = (struct span){(uint32_t)i, (uint32_t)mlen};
	if (!mail && smtp_addr_is_postmaster(line + i, mlen)) {
		out->postmaster = true;
	} else {
		if (smtp_addr_parse(line + i, mlen, true, &out->addr) != 0) {
			out->reply = r_addr;
			return -SLUICE_ESYNTAX;
		}
		out->addr.local.off += (uint32_t)i;
		out->addr.domain.off += (uint32_t)i;
	}
	int rc = cmd_params(line, gt + 1, end, out);
	if (rc != 0)
		return rc;
	if (mail && out->addr.utf8) {
		/* RFC 6531 3.4: a non-ASCII path needs the SMTPUTF8 parameter */
		bool utf8 = false;
		for (unsigned k = 0; k < out->nparams; k++)
			if (IEQ_LIT(line + out->params[k].key.off, out->params[k].key.len,
				    "smtputf8"))
				utf8 = true;
		if (!utf8) {
			out->reply = R_NEED_UTF8;
			return -SLUICE_ESYNTAX;
		}
	}
	return 0;
syntax:
	out->reply = r_syntax;
	return -SLUICE_ESYNTAX;
}

static int
cmd_bdat(const char *line, struct smtp_cmd *out)
{
	size_t i = out->arg.off, end = (size_t)out->arg.off + out->arg.len;
	uint64_t v = 0;
	size_t d = i;
	while (i < end && line[i] >= '0' && line[i] <= '9') {
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > SMTP_BDAT_MAX_SIZE)
			goto syntax; /* checked every digit, so v never wraps */
		i++;
	}
	if (i == d)
		goto syntax;
	out->bdat_size = v;
	if (i == end)
		return 0;
	if (line[i] != ' ' || !IEQ_LIT(line + i + 1, end - i - 1, "last"))
		goto syntax;
	out->bdat_last = true;
	return 0;
syntax:
	out->reply = R_BDAT;
	return -SLUICE_ESYNTAX;
}

/* A HELO/EHLO argument: 1..255 octets without blanks (controls are refused earlier). */
static bool
helo_is_word(const char *p, size_t n)
{
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] == ' ' || p[i] == '\t')
			return false;
	return true;
}

int
smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	out->verb = SMTP_V_UNKNOWN;
	out->arg = (struct span){0, 0};
	out->path = (struct span){0, 0};
	out->null_path = false;
	out->postmaster = false;
	out->addr = (struct smtp_addr){0};
	out->nparams = 0;
	out->bdat_size = 0;
	out->bdat_last = false;
	out->reply = NULL;

	if (len > UINT32_MAX) {
		out->reply = R_UNKNOWN;
		return -SLUICE_ELIMIT;
	}
	const char *sp = memchr(line, ' ', len);
	size_t vlen = sp ? (size_t)(sp - line) : len;
	out->verb = cmd_verb(line, vlen);
	if (out->verb == SMTP_V_UNKNOWN) {
		out->reply = R_UNKNOWN;
		return -SLUICE_ESYNTAX;
	}
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			out->reply = R_CTL;
			return -SLUICE_ESYNTAX;
		}
	}
	size_t a = sp ? vlen + 1 : len, e = len;
	while (e > a && (line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	out->arg = (struct span){(uint32_t)a, (uint32_t)(e - a)};
	const char *arg = line + a;
	size_t alen = e - a;

	switch (out->verb) {
	case SMTP_V_HELO:
	case SMTP_V_EHLO:
		/*
		 * One word, no more: an MX must not turn mail away over a
		 * client's HELO name ("EHLO my_pc", a trailing dot), as Postfix
		 * does not by default (RFC 5321 4.1.4 forbids refusing on a
		 * mismatch). Blanks inside are still a syntax error.
		 */
		if (!helo_is_word(arg, alen)) {
			out->reply = out->verb == SMTP_V_HELO ? R_HELO : R_EHLO;
			return -SLUICE_ESYNTAX;
		}
		return 0;
	case SMTP_V_MAIL:
		return cmd_path(line, out, "from:", 5);
	case SMTP_V_RCPT:
		return cmd_path(line, out, "to:", 3);
	case SMTP_V_BDAT:
		return cmd_bdat(line, out);
	case SMTP_V_DATA:
	case SMTP_V_RSET:
	case SMTP_V_QUIT:
	case SMTP_V_STARTTLS:
		if (alen != 0) {
			out->reply = out->verb == SMTP_V_DATA	? R_DATA
				     : out->verb == SMTP_V_RSET ? R_RSET
				     : out->verb == SMTP_V_QUIT ? R_QUIT
								: R_STARTTLS;
			return -SLUICE_ESYNTAX;
		}
		return 0;
	case SMTP_V_AUTH:
		if (alen == 0) {
			out->reply = R_AUTH;
			return -SLUICE_ESYNTAX;
		}
		return 0;
	case SMTP_V_NOOP:
	case SMTP_V_HELP:
	case SMTP_V_VRFY:
	case SMTP_V_EXPN:
		return 0;
	case SMTP_V_UNKNOWN:
	case SMTP_V__COUNT:
		break;
	}
	BUG_ON(1);
	return -SLUICE_ESTATE;
}

int
smtp_cmd_mail_params(const char *line, const struct smtp_cmd *cmd, struct smtp_mail_params *out,
		     const char **reply)
{
	*out = (struct smtp_mail_params){0};
	*reply = NULL;
	bool seen_body = false;
	for (unsigned k = 0; k < cmd->nparams; k++) {
		const struct smtp_param *pm = &cmd->params[k];
		const char *key = line + pm->key.off, *val = line + pm->value.off;
		size_t kn = pm->key.len, vn = pm->value.len;
		if (IEQ_LIT(key, kn, "size") && !out->has_size) {
			if (!pm->has_value || vn > 20)
				goto bad_size;
			uint64_t v = 0;
			for (size_t i = 0; i < vn; i++) {
				if (val[i] < '0' || val[i] > '9')
					goto bad_size;
				uint64_t d = (uint64_t)(val[i] - '0');
				if (v > (UINT64_MAX - d) / 10)
					goto bad_size; /* 20 digits can overflow */
				v = v * 10 + d;
			}
			out->size = v;
			out->has_size = true;
		} else if (IEQ_LIT(key, kn, "body") && !seen_body) {
			seen_body = true;
			if (!pm->has_value) {
				*reply = R_BODY;
				return -SLUICE_ESYNTAX;
			}
			if (IEQ_LIT(val, vn, "7bit")) {
				out->body = SMTP_BODY_7BIT;
			} else if (IEQ_LIT(val, vn, "8bitmime")) {
				out->body = SMTP_BODY_8BITMIME;
			} else if (IEQ_LIT(val, vn, "binarymime")) {
				*reply = R_UNSUPPORTED; /* not advertised (RFC 3030 3) */
				return -ENOTSUP;
			} else {
				*reply = R_BODY;
				return -SLUICE_ESYNTAX;
			}
		} else if (IEQ_LIT(key, kn, "smtputf8") && !out->smtputf8) {
			if (pm->has_value) {
				*reply = R_UTF8;
				return -SLUICE_ESYNTAX;
			}
			out->smtputf8 = true;
		} else {
			*reply = R_UNSUPPORTED; /* unknown or given twice */
			return -ENOTSUP;
		}
	}
	return 0;
bad_size:
	*reply = R_SIZE;
	return -SLUICE_ESYNTAX;
}

int
smtp_cmd_rcpt_params(const char *line, const struct smtp_cmd *cmd, const char **reply)
{
	(void)line;
	*reply = NULL;
	if (cmd->nparams == 0)
		return 0;
	*reply = R_UNSUPPORTED;
	return -ENOTSUP;
}
