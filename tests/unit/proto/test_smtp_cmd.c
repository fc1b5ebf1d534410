/*
 * test_smtp_cmd.c -- command parser: verbs in any case, arguments, paths,
 * ESMTP parameters, BDAT sizes, and every error reply text.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "proto/smtp_cmd.h"

#define S(lit) lit, sizeof(lit) - 1

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
static const char R_BDAT[] = "501 5.5.4 Syntax: BDAT size [LAST]";
static const char R_AUTH[] = "501 5.5.4 Syntax: AUTH mechanism";

struct cmd_case {
	const char *in;	     /* command line without CRLF */
	size_t n;	     /* its length */
	enum smtp_verb verb; /* expected verb */
	const char *reply;   /* expected reply text; NULL = success */
};

static const struct cmd_case cmd_cases[] = {
    /* verbs, any case */
    {S("EHLO example.org"), SMTP_V_EHLO, NULL},
    {S("ehlo example.org"), SMTP_V_EHLO, NULL},
    {S("eHlO example.org"), SMTP_V_EHLO, NULL},
    {S("HELO example.org"), SMTP_V_HELO, NULL},
    {S("helo [192.0.2.1]"), SMTP_V_HELO, NULL},
    {S("EHLO [IPv6:2001:db8::1]"), SMTP_V_EHLO, NULL},
    {S("EHLO example.org  "), SMTP_V_EHLO, NULL},
    /* names real clients send: accepted, as Postfix does by default */
    {S("EHLO my_pc"), SMTP_V_EHLO, NULL},
    {S("EHLO a..b"), SMTP_V_EHLO, NULL},
    {S("EHLO -a.example"), SMTP_V_EHLO, NULL},
    {S("HELO x.example."), SMTP_V_HELO, NULL},
    {S("DATA"), SMTP_V_DATA, NULL},
    {S("data"), SMTP_V_DATA, NULL},
    {S("DATA "), SMTP_V_DATA, NULL},
    {S("RSET"), SMTP_V_RSET, NULL},
    {S("rset"), SMTP_V_RSET, NULL},
    {S("QUIT"), SMTP_V_QUIT, NULL},
    {S("Quit"), SMTP_V_QUIT, NULL},
    {S("NOOP"), SMTP_V_NOOP, NULL},
    {S("noop anything goes"), SMTP_V_NOOP, NULL},
    {S("HELP"), SMTP_V_HELP, NULL},
    {S("help mail"), SMTP_V_HELP, NULL},
    {S("VRFY"), SMTP_V_VRFY, NULL},
    {S("vrfy someone"), SMTP_V_VRFY, NULL},
    {S("EXPN list"), SMTP_V_EXPN, NULL},
    {S("STARTTLS"), SMTP_V_STARTTLS, NULL},
    {S("starttls"), SMTP_V_STARTTLS, NULL},
    {S("StartTls"), SMTP_V_STARTTLS, NULL},
    {S("AUTH PLAIN"), SMTP_V_AUTH, NULL},
    {S("auth plain AGpvZQBzZWNyZXQ="), SMTP_V_AUTH, NULL},
    {S("BDAT 0 LAST"), SMTP_V_BDAT, NULL},
    {S("bdat 100"), SMTP_V_BDAT, NULL},
    {S("MAIL FROM:<a@b.example>"), SMTP_V_MAIL, NULL},
    {S("mail from:<a@b.example>"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<>"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM: <a@b.example>"), SMTP_V_MAIL, NULL},
    {S("RCPT TO:<c@d.example>"), SMTP_V_RCPT, NULL},
    {S("rcpt to:<c@d.example>"), SMTP_V_RCPT, NULL},
    {S("RCPT TO: <c@d.example>"), SMTP_V_RCPT, NULL},
    {S("RCPT TO:<postmaster>"), SMTP_V_RCPT, NULL},
    {S("RCPT TO:<PostMaster>"), SMTP_V_RCPT, NULL},
    {S("RCPT TO:<@relay.example:c@d.example>"), SMTP_V_RCPT, NULL},
    {S("RCPT TO:<@a.example,@b.example:c@d.example>"), SMTP_V_RCPT, NULL},
    {S("MAIL FROM:<\"a b\"@x.example>"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<\"a>b\"@x.example>"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<a@[192.0.2.1]>"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<a@b.example>  SIZE=100"), SMTP_V_MAIL, NULL},
    {S("MAIL FROM:<\xc3\xa9@b.example> SMTPUTF8"), SMTP_V_MAIL, NULL},
    {S("RCPT TO:<\xc3\xa9@b.example>"), SMTP_V_RCPT, NULL},

    /* unknown verbs */
    {S(""), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S(" "), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("XYZZY"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("MAI"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("MAILX FROM:<a@b>"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S(" MAIL FROM:<a@b>"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("MAIL\tFROM:<a@b>"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("STARTTLSX"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("GET / HTTP/1.1"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("M@IL FROM:<a@b>"), SMTP_V_UNKNOWN, R_UNKNOWN},
    {S("\xcd\xc1\xc9\xcc"), SMTP_V_UNKNOWN, R_UNKNOWN},

    /* control characters */
    {S("NOOP a\0b"), SMTP_V_NOOP, R_CTL},
    {S("NOOP \x7f"), SMTP_V_NOOP, R_CTL},
    {S("MAIL FROM:<a@b>\x01"), SMTP_V_MAIL, R_CTL},

    /* HELO / EHLO */
    {S("EHLO"), SMTP_V_EHLO, R_EHLO},
    {S("EHLO "), SMTP_V_EHLO, R_EHLO},
    {S("EHLO two words"), SMTP_V_EHLO, R_EHLO},
    {S("HELO"), SMTP_V_HELO, R_HELO},

    /* commands that take no argument */
    {S("DATA x"), SMTP_V_DATA, "501 5.5.4 Syntax: DATA"},
    {S("RSET x"), SMTP_V_RSET, "501 5.5.4 Syntax: RSET"},
    {S("QUIT now"), SMTP_V_QUIT, "501 5.5.4 Syntax: QUIT"},
    {S("STARTTLS x"), SMTP_V_STARTTLS, "501 5.5.4 Syntax: STARTTLS"},
    {S("AUTH"), SMTP_V_AUTH, R_AUTH},
    {S("AUTH "), SMTP_V_AUTH, R_AUTH},

    /* MAIL syntax */
    {S("MAIL"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:a@b.example"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:<a@b.example"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:  <a@b.example>"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM <a@b.example>"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL TO:<a@b.example>"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL  FROM:<a@b.example>"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:<a@b.example>x"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:<a@b.example>SIZE=1"), SMTP_V_MAIL, R_MAIL},
    {S("MAIL FROM:<a>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<postmaster>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<a@>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<@b.example>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<a..b@c.example>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<a b@c.example>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<@a.example:>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<@a.example,b.example:c@d.example>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<@bad_dom:c@d.example>"), SMTP_V_MAIL, R_SENDER},
    {S("MAIL FROM:<\xc3\xa9@b.example>"), SMTP_V_MAIL, R_NEED_UTF8},
    {S("MAIL FROM:<a@b.example> =1"), SMTP_V_MAIL, R_PARAMS},
    {S("MAIL FROM:<a@b.example> SIZE="), SMTP_V_MAIL, R_PARAMS},
    {S("MAIL FROM:<a@b.example> SIZE==1"), SMTP_V_MAIL, R_PARAMS},
    {S("MAIL FROM:<a@b.example> -X"), SMTP_V_MAIL, R_PARAMS},
    {S("MAIL FROM:<a@b.example> A B C D E F G H I J K L M N O P Q"), SMTP_V_MAIL, R_TOO_MANY},

    /* RCPT syntax */
    {S("RCPT"), SMTP_V_RCPT, R_RCPT},
    {S("RCPT TO"), SMTP_V_RCPT, R_RCPT},
    {S("RCPT FROM:<a@b.example>"), SMTP_V_RCPT, R_RCPT},
    {S("RCPT TO:c@d.example"), SMTP_V_RCPT, R_RCPT},
    {S("RCPT TO:<c@d.example"), SMTP_V_RCPT, R_RCPT},
    {S("RCPT TO:<>"), SMTP_V_RCPT, R_RECIPIENT},
    {S("RCPT TO:<c>"), SMTP_V_RCPT, R_RECIPIENT},
    {S("RCPT TO:<postmaster@>"), SMTP_V_RCPT, R_RECIPIENT},
    {S("RCPT TO:<c@d_e.example>"), SMTP_V_RCPT, R_RECIPIENT},
    {S("RCPT TO:<\xc3@d.example>"), SMTP_V_RCPT, R_RECIPIENT},

    /* BDAT */
    {S("BDAT"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT "), SMTP_V_BDAT, R_BDAT},
    {S("BDAT x"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT -1"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT 10 FIRST"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT 10  LAST"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT 10LAST"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT 9007199254740993"), SMTP_V_BDAT, R_BDAT},
    {S("BDAT 99999999999999999999999"), SMTP_V_BDAT, R_BDAT},
};

Test(smtp_cmd, table_of_commands_and_error_replies)
{
	for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *c = &cmd_cases[i];
		struct smtp_cmd cmd;
		int rc = smtp_cmd_parse(c->in, c->n, &cmd);
		cr_expect_eq(cmd.verb, c->verb, "[%s]: verb %d, want %d", c->in, cmd.verb, c->verb);
		if (c->reply == NULL) {
			cr_expect_eq(rc, 0, "[%s]: rc %d reply %s", c->in, rc,
				     cmd.reply ? cmd.reply : "(null)");
			cr_expect_null(cmd.reply, "[%s]", c->in);
		} else {
			cr_expect_lt(rc, 0, "[%s]: accepted", c->in);
			cr_expect_str_eq(cmd.reply ? cmd.reply : "(null)", c->reply, "[%s]", c->in);
		}
	}
}

static void
expect_span(const char *line, struct span s, const char *want, const char *what)
{
	cr_expect_eq(s.len, strlen(want), "%s: length %u, want %zu", what, s.len, strlen(want));
	if (s.len == strlen(want))
		cr_expect_eq(memcmp(line + s.off, want, s.len), 0, "%s: '%.*s' want '%s'", what,
			     (int)s.len, line + s.off, want);
}

Test(smtp_cmd, mail_path_and_params_are_spans_into_the_line)
{
	const char line[] = "MAIL FROM:<user@example.org> SIZE=1000 BODY=8BITMIME SMTPUTF8";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	expect_span(line, cmd.path, "user@example.org", "path");
	expect_span(line, cmd.addr.local, "user", "local");
	expect_span(line, cmd.addr.domain, "example.org", "domain");
	cr_assert_not(cmd.null_path);
	cr_assert_eq(cmd.nparams, 3);
	expect_span(line, cmd.params[0].key, "SIZE", "key 0");
	expect_span(line, cmd.params[0].value, "1000", "value 0");
	cr_assert(cmd.params[0].has_value);
	expect_span(line, cmd.params[1].key, "BODY", "key 1");
	expect_span(line, cmd.params[1].value, "8BITMIME", "value 1");
	expect_span(line, cmd.params[2].key, "SMTPUTF8", "key 2");
	cr_assert_not(cmd.params[2].has_value);
	cr_assert_eq(cmd.params[2].value.len, 0);
}

Test(smtp_cmd, null_sender_sets_null_path)
{
	const char line[] = "MAIL FROM:<> BODY=7BIT";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	cr_assert(cmd.null_path);
	cr_assert_eq(cmd.path.len, 0);
	cr_assert_eq(cmd.nparams, 1);
}

Test(smtp_cmd, source_route_is_dropped_from_the_path)
{
	const char line[] = "RCPT TO:<@a.example,@b.example:joe@c.example>";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	expect_span(line, cmd.path, "joe@c.example", "path");
	expect_span(line, cmd.addr.domain, "c.example", "domain");
}

Test(smtp_cmd, rcpt_to_postmaster_without_domain_is_flagged)
{
	const char line[] = "RCPT TO:<POSTMASTER>";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	cr_assert(cmd.postmaster);
	expect_span(line, cmd.path, "POSTMASTER", "path");
	const char line2[] = "RCPT TO:<postmaster@example.org>";
	cr_assert_eq(smtp_cmd_parse(line2, sizeof(line2) - 1, &cmd), 0);
	cr_assert_not(cmd.postmaster);
}

Test(smtp_cmd, rcpt_with_utf8_path_is_flagged_for_the_session)
{
	const char line[] = "RCPT TO:<\xc3\xa9l\xc3\xa8ve@\xc3\xa9"
			    "cole.example>";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	cr_assert(cmd.addr.utf8);
	const char ascii[] = "RCPT TO:<eleve@ecole.example>";
	cr_assert_eq(smtp_cmd_parse(ascii, sizeof(ascii) - 1, &cmd), 0);
	cr_assert_not(cmd.addr.utf8);
}

Test(smtp_cmd, helo_argument_span_is_trimmed)
{
	const char line[] = "EHLO mx.example.org \t ";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	expect_span(line, cmd.arg, "mx.example.org", "arg");
}

Test(smtp_cmd, noop_argument_is_kept)
{
	const char line[] = "NOOP hello there";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	expect_span(line, cmd.arg, "hello there", "arg");
	cr_assert_eq(smtp_cmd_parse("NOOP", 4, &cmd), 0);
	cr_assert_eq(cmd.arg.len, 0);
}

Test(smtp_cmd, bdat_size_limit_at_n_minus_1_n_and_n_plus_1)
{
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(S("BDAT 9007199254740991"), &cmd), 0);
	cr_assert_eq(cmd.bdat_size, (UINT64_C(1) << 53) - 1);
	cr_assert_eq(smtp_cmd_parse(S("BDAT 9007199254740992 LAST"), &cmd), 0);
	cr_assert_eq(cmd.bdat_size, UINT64_C(1) << 53);
	cr_assert(cmd.bdat_last);
	cr_assert_lt(smtp_cmd_parse(S("BDAT 9007199254740993"), &cmd), 0);
	cr_assert_str_eq(cmd.reply, R_BDAT);
}

Test(smtp_cmd, bdat_last_is_case_insensitive_and_leading_zeros_are_fine)
{
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(S("bdat 00000000000000000000042 last"), &cmd), 0);
	cr_assert_eq(cmd.bdat_size, 42);
	cr_assert(cmd.bdat_last);
	cr_assert_eq(smtp_cmd_parse(S("BDAT 0"), &cmd), 0);
	cr_assert_eq(cmd.bdat_size, 0);
	cr_assert_not(cmd.bdat_last);
}

Test(smtp_cmd, sixteen_params_are_accepted_seventeen_are_not)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "MAIL FROM:<a@b.example>");
	for (int i = 0; i < SMTP_MAX_PARAMS; i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " K%d=V", i);
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, (size_t)n, &cmd), 0);
	cr_assert_eq(cmd.nparams, SMTP_MAX_PARAMS);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " X");
	cr_assert_eq(smtp_cmd_parse(line, (size_t)n, &cmd), -SLUICE_ELIMIT);
	cr_assert_str_eq(cmd.reply, R_TOO_MANY);
}

Test(smtp_cmd, verb_names_round_trip)
{
	for (int v = SMTP_V_HELO; v < SMTP_V__COUNT; v++) {
		const char *name = smtp_verb_name((enum smtp_verb)v);
		char line[16];
		int n = snprintf(line, sizeof(line), "%s", name);
		struct smtp_cmd cmd;
		smtp_cmd_parse(line, (size_t)n, &cmd);
		cr_expect_eq(cmd.verb, v, "%s", name);
	}
	cr_assert_str_eq(smtp_verb_name(SMTP_V__COUNT), "UNKNOWN");
}

/* ---- MAIL / RCPT parameter validation ---- */

struct param_case {
	const char *in;	   /* MAIL line */
	const char *reply; /* expected; NULL = accepted */
};

static const struct param_case param_cases[] = {
    {"MAIL FROM:<a@b.example>", NULL},
    {"MAIL FROM:<a@b.example> SIZE=0", NULL},
    {"MAIL FROM:<a@b.example> size=12345", NULL},
    {"MAIL FROM:<a@b.example> SIZE=18446744073709551615", NULL},
    {"MAIL FROM:<a@b.example> SIZE=00000000000000000001", NULL},
    {"MAIL FROM:<a@b.example> BODY=7BIT", NULL},
    {"MAIL FROM:<a@b.example> body=8bitmime", NULL},
    {"MAIL FROM:<a@b.example> SMTPUTF8", NULL},
    {"MAIL FROM:<a@b.example> smtputf8 SIZE=1 BODY=8BITMIME", NULL},
    {"MAIL FROM:<a@b.example> SIZE=18446744073709551616", "501 5.5.4 Bad SIZE parameter"},
    {"MAIL FROM:<a@b.example> SIZE=000000000000000000001", "501 5.5.4 Bad SIZE parameter"},
    {"MAIL FROM:<a@b.example> SIZE=99999999999999999999", "501 5.5.4 Bad SIZE parameter"},
    {"MAIL FROM:<a@b.example> SIZE=12k", "501 5.5.4 Bad SIZE parameter"},
    {"MAIL FROM:<a@b.example> SIZE", "501 5.5.4 Bad SIZE parameter"},
    {"MAIL FROM:<a@b.example> BODY=9BIT", "501 5.5.4 Bad BODY parameter"},
    {"MAIL FROM:<a@b.example> BODY", "501 5.5.4 Bad BODY parameter"},
    {"MAIL FROM:<a@b.example> SMTPUTF8=yes", "501 5.5.4 Bad SMTPUTF8 parameter"},
    {"MAIL FROM:<a@b.example> BODY=BINARYMIME", "555 5.5.4 Unsupported parameter"},
    {"MAIL FROM:<a@b.example> RET=FULL", "555 5.5.4 Unsupported parameter"},
    {"MAIL FROM:<a@b.example> AUTH=<>", "555 5.5.4 Unsupported parameter"},
    {"MAIL FROM:<a@b.example> SIZE=1 SIZE=2", "555 5.5.4 Unsupported parameter"},
    {"MAIL FROM:<a@b.example> BODY=7BIT body=7bit", "555 5.5.4 Unsupported parameter"},
    {"MAIL FROM:<a@b.example> SMTPUTF8 SMTPUTF8", "555 5.5.4 Unsupported parameter"},
};

Test(smtp_cmd, table_of_mail_parameters)
{
	for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
		const struct param_case *c = &param_cases[i];
		struct smtp_cmd cmd;
		cr_assert_eq(smtp_cmd_parse(c->in, strlen(c->in), &cmd), 0, "[%s] %s", c->in,
			     cmd.reply);
		struct smtp_mail_params mp;
		const char *reply = "unset";
		int rc = smtp_cmd_mail_params(c->in, &cmd, &mp, &reply);
		if (c->reply == NULL) {
			cr_expect_eq(rc, 0, "[%s] %s", c->in, reply ? reply : "");
			cr_expect_null(reply, "[%s]", c->in);
		} else {
			cr_expect_lt(rc, 0, "[%s] accepted", c->in);
			cr_expect_str_eq(reply ? reply : "(null)", c->reply, "[%s]", c->in);
		}
	}
}

Test(smtp_cmd, mail_parameter_values_are_decoded)
{
	const char line[] =
	    "MAIL FROM:<a@b.example> SIZE=18446744073709551615 BODY=8bitMIME SMTPUTF8";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(line, sizeof(line) - 1, &cmd), 0);
	struct smtp_mail_params mp;
	const char *reply;
	cr_assert_eq(smtp_cmd_mail_params(line, &cmd, &mp, &reply), 0);
	cr_assert(mp.has_size);
	cr_assert_eq(mp.size, UINT64_MAX);
	cr_assert_eq(mp.body, SMTP_BODY_8BITMIME);
	cr_assert(mp.smtputf8);

	const char plain[] = "MAIL FROM:<a@b.example>";
	cr_assert_eq(smtp_cmd_parse(plain, sizeof(plain) - 1, &cmd), 0);
	cr_assert_eq(smtp_cmd_mail_params(plain, &cmd, &mp, &reply), 0);
	cr_assert_not(mp.has_size);
	cr_assert_eq(mp.size, 0);
	cr_assert_eq(mp.body, SMTP_BODY_7BIT);
	cr_assert_not(mp.smtputf8);
}

Test(smtp_cmd, rcpt_refuses_any_parameter)
{
	struct smtp_cmd cmd;
	const char *reply;
	const char ok[] = "RCPT TO:<c@d.example>";
	cr_assert_eq(smtp_cmd_parse(ok, sizeof(ok) - 1, &cmd), 0);
	cr_assert_eq(smtp_cmd_rcpt_params(ok, &cmd, &reply), 0);
	cr_assert_null(reply);
	const char dsn[] = "RCPT TO:<c@d.example> NOTIFY=NEVER";
	cr_assert_eq(smtp_cmd_parse(dsn, sizeof(dsn) - 1, &cmd), 0);
	cr_assert_eq(smtp_cmd_rcpt_params(dsn, &cmd, &reply), -ENOTSUP);
	cr_assert_str_eq(reply, "555 5.5.4 Unsupported parameter");
}

Test(smtp_cmd, parser_reads_only_the_given_length)
{
	/* the bytes after len would make the command valid; they must be ignored */
	const char buf[] = "DATAX";
	struct smtp_cmd cmd;
	cr_assert_eq(smtp_cmd_parse(buf, 4, &cmd), 0);
	cr_assert_eq(cmd.verb, SMTP_V_DATA);
	const char mail[] = "MAIL FROM:<a@b.example>";
	cr_assert_lt(smtp_cmd_parse(mail, sizeof(mail) - 2, &cmd), 0);
	cr_assert_str_eq(cmd.reply, R_MAIL);
}

static uint64_t
rnd(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static bool
span_inside(struct span s, size_t len)
{
	return s.len == 0 || ((size_t)s.off + s.len <= len);
}

/*
 * Random lines built from a verb and the bytes the grammar cares about, each
 * in a heap block of exactly its length (ASan catches any over-read): the
 * parser must either succeed with every span inside the line or fail with a
 * reply that starts with a 5xx code.
 */
Test(smtp_cmd, random_lines_give_spans_inside_the_line_or_a_5xx_reply)
{
	static const char *const verbs[] = {"MAIL FROM:",  "RCPT TO:",	"EHLO ", "BDAT ", "DATA",
					    "mail from: ", "rcpt to:<", "NOOP ", "X"};
	static const char alphabet[] = "<>@\"\\.:,[]= -aZ09\x80\xc3\xa9\tIPv6";
	uint64_t seed = 42;
	char tmp[96];
	for (int round = 0; round < 20000; round++) {
		const char *v = verbs[rnd(&seed) % (sizeof(verbs) / sizeof(verbs[0]))];
		size_t n = strlen(v);
		memcpy(tmp, v, n);
		size_t extra = (size_t)(rnd(&seed) % 40);
		for (size_t i = 0; i < extra; i++)
			tmp[n++] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
		char *line = malloc(n);
		memcpy(line, tmp, n);
		struct smtp_cmd cmd;
		int rc = smtp_cmd_parse(line, n, &cmd);
		if (rc == 0) {
			cr_assert_null(cmd.reply);
			cr_assert(span_inside(cmd.arg, n));
			cr_assert(span_inside(cmd.path, n));
			cr_assert(span_inside(cmd.addr.local, n));
			cr_assert(span_inside(cmd.addr.domain, n));
			cr_assert_leq(cmd.nparams, SMTP_MAX_PARAMS);
			for (unsigned k = 0; k < cmd.nparams; k++) {
				cr_assert(span_inside(cmd.params[k].key, n));
				cr_assert(span_inside(cmd.params[k].value, n));
			}
			if (cmd.verb == SMTP_V_MAIL) {
				struct smtp_mail_params mp;
				const char *reply;
				if (smtp_cmd_mail_params(line, &cmd, &mp, &reply) != 0)
					cr_assert(reply && reply[0] == '5', "%s", reply);
			}
		} else {
			cr_assert_not_null(cmd.reply);
			cr_assert(cmd.reply[0] == '5' && cmd.reply[3] == ' ', "%s", cmd.reply);
		}
		free(line);
	}
}
