/*
 * smtp_cmd.h -- pure SMTP command parser (RFC 5321 4.1, RFC 3030, RFC 6531).
 *
 * Input: one command line without its CRLF, as framed by smtp_line. Output:
 * the verb and spans (relative to the line) for the argument, the path and
 * the ESMTP parameters, or a ready-made static reply text on a syntax error.
 * State checks (is MAIL allowed now?) belong to the session, not here.
 *
 * Decisions:
 * - The verb is the bytes up to the first SP; it is matched on length plus a
 *   case-folded compare (nginx). Anything else is 500 5.5.1.
 * - Trailing SP/HTAB after the argument is ignored (many clients send it;
 *   Postfix tokenises it away too). Everything else is strict RFC 5321, with
 *   two leniencies that real clients need: "MAIL FROM: <a@b>" (one SP after
 *   the colon) and runs of SP between ESMTP parameters.
 * - Control characters (other than HTAB) anywhere in the line are refused:
 *   a NUL or DEL has no business in a command and confuses logs downstream.
 * - RCPT paths are parsed with SMTPUTF8 allowed and cmd->addr.utf8 tells the
 *   session; only it knows whether the transaction's MAIL carried SMTPUTF8.
 *   MAIL knows by itself (its own SMTPUTF8 parameter).
 * - Rejected alternative: a callback per parameter. A fixed array of
 *   SMTP_MAX_PARAMS spans keeps the parser allocation-free and lets
 *   smtp_cmd_mail_params run later, after the session's state checks.
 */
#ifndef SLUICE_PROTO_SMTP_CMD_H
#define SLUICE_PROTO_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/smtp_addr.h"
#include "proto/span.h"

#define SMTP_MAX_PARAMS	   16		       /* ESMTP parameters per MAIL/RCPT */
#define SMTP_BDAT_MAX_SIZE (UINT64_C(1) << 53) /* largest BDAT chunk-size we parse */

enum smtp_verb {
	SMTP_V_UNKNOWN = 0, /* not a verb we know; reply 500 5.5.1 */
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_BDAT,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V__COUNT, /* number of values; not a verb */
};

struct smtp_param {
	struct span key;   /* esmtp-keyword, rel. to the line */
	struct span value; /* esmtp-value, rel. to the line; empty unless has_value */
	bool has_value;	   /* "KEY=VALUE" rather than "KEY" */
};

enum smtp_body {
	SMTP_BODY_7BIT,	      /* no BODY parameter, or BODY=7BIT */
	SMTP_BODY_8BITMIME,   /* BODY=8BITMIME (RFC 6152) */
	SMTP_BODY_BINARYMIME, /* BODY=BINARYMIME (RFC 3030); never accepted today */
};

struct smtp_cmd {
	enum smtp_verb verb;   /* set even when the parse fails on the argument */
	struct span arg;       /* text after verb + SP, trailing SP/HTAB trimmed; may be empty */
	struct span path;      /* MAIL/RCPT: the mailbox inside <>, source route dropped */
	bool null_path;	       /* MAIL FROM:<> */
	bool postmaster;       /* RCPT TO:<postmaster> without a domain (any case) */
	struct smtp_addr addr; /* MAIL/RCPT mailbox; spans rel. to the line; zero if none */
	struct smtp_param params[SMTP_MAX_PARAMS]; /* MAIL/RCPT ESMTP params, in order */
	unsigned nparams;			   /* entries used in params */
	uint64_t bdat_size;			   /* BDAT chunk-size, <= SMTP_BDAT_MAX_SIZE */
	bool bdat_last;				   /* BDAT ... LAST */
	const char *reply; /* on error: static reply without CRLF; NULL on success */
};

struct smtp_mail_params {
	uint64_t size;	     /* SIZE= value in octets (RFC 1870); 0 if absent */
	bool has_size;	     /* a SIZE parameter was given */
	enum smtp_body body; /* BODY= value */
	bool smtputf8;	     /* SMTPUTF8 given (RFC 6531) */
};

/*
 * smtp_cmd_parse -- parse one command line line[0..len) (no CRLF).
 *
 * Returns 0 and fills *out, or a negative code (-SLUICE_ESYNTAX, or
 * -SLUICE_ELIMIT for too many parameters) with out->reply set to a static
 * reply text without CRLF (e.g. "501 5.5.4 Syntax: MAIL FROM:<address>").
 * out->verb is set whenever the verb was recognised. Spans in *out are
 * relative to line and valid as long as line is. Pure: no I/O, no
 * allocation, never reads past line + len.
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/*
 * smtp_cmd_mail_params -- validate the ESMTP parameters of a parsed MAIL.
 *
 * line is the line given to smtp_cmd_parse and cmd its successful result.
 * Accepts SIZE=1*20DIGIT, BODY=7BIT|8BITMIME (any case) and SMTPUTF8 (no
 * value), each at most once. Returns 0 and fills *out, or a negative code
 * with *reply set: 501 5.5.4 for a bad value, 555 5.5.4 for an unknown,
 * duplicated or unadvertised parameter (BINARYMIME included).
 */
int smtp_cmd_mail_params(const char *line, const struct smtp_cmd *cmd, struct smtp_mail_params *out,
			 const char **reply);

/* smtp_cmd_rcpt_params -- we advertise no RCPT parameters (no DSN), so any
 * is refused: returns -ENOTSUP with *reply = "555 5.5.4 Unsupported
 * parameter", or 0 when cmd has none. */
int smtp_cmd_rcpt_params(const char *line, const struct smtp_cmd *cmd, const char **reply);

/* smtp_verb_name -- upper-case name of v for logs ("UNKNOWN" for others). */
const char *smtp_verb_name(enum smtp_verb v);

#endif /* SLUICE_PROTO_SMTP_CMD_H */
