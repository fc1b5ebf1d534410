/*
 * test_tool_msg.c -- the ledger digest (tools/common/tool_msg): XXH64 seed 0
 * of the content without its leading Received: fields (folded lines too),
 * a Received: field further down hashed, the size, the Message-ID with and
 * without "<>", one known digest hard-coded, and chunking invariance.
 *
 * Most rows give the bytes that must be hashed; the expected digest is then
 * XXH64(those bytes, 0) in one shot, an independent path from the streaming
 * state tool_msg keeps. The hard-coded digest pins the whole definition.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/split_feeder.h"
#include "tools/common/tool_msg.h"

struct msg_ctx {
	struct tool_msg m; /* digest under test */
};

static void
msg_reset(void *ctx)
{
	struct msg_ctx *c = ctx;
	tool_msg_init(&c->m);
}

static size_t
msg_feed(void *ctx, const char *p, size_t n, struct split_log *log)
{
	struct msg_ctx *c = ctx;
	(void)log;
	tool_msg_feed(&c->m, p, n);
	return n;
}

static void
msg_finish(void *ctx, struct split_log *log)
{
	struct msg_ctx *c = ctx;
	uint64_t h = tool_msg_final(&c->m);
	split_log_add(log, "hash=%016llx size=%llu total=%llu id=", (unsigned long long)h,
		      (unsigned long long)c->m.size, (unsigned long long)c->m.total);
	split_log_bytes(log, c->m.id, strlen(c->m.id));
}

/* The trace a message should give: digest and size of hashed[0..hn), total n. */
static void
want_trace(struct split_log *want, const char *hashed, size_t hn, size_t n, const char *id)
{
	split_log_add(want, "hash=%016llx size=%zu total=%zu id=",
		      (unsigned long long)XXH64(hashed, hn, 0), hn, n);
	split_log_bytes(want, id, strlen(id));
}

static void
expect_msg(const char *in, size_t n, const char *want, const char *label)
{
	static struct msg_ctx c;
	struct split_target t = {&c, msg_reset, msg_feed, msg_finish};
	struct split_log whole = {0};
	char why[8192];
	int rc = split_check_all(&t, in, n, &whole, why, sizeof(why));
	cr_expect_eq(rc, 0, "%s: chunking changed the digest: %s", label, why);
	cr_expect_str_eq(split_log_str(&whole), want, "%s:\n  got:  %s\n  want: %s", label,
			 split_log_str(&whole), want);
	split_log_free(&whole);
}

#define S(lit) lit, sizeof(lit) - 1

/* The base message: what every "leading Received:" row must hash to. */
#define BASE "Subject: hi\r\nMessage-ID: <a1@example.org>\r\n\r\nhello\r\n"
#define RCVD "Received: from a.example by b.example; Mon, 1 Jan 2024 00:00:00 +0000\r\n"

struct msg_case {
	const char *label;  /* what the row shows */
	const char *in;	    /* message content (unstuffed, CRLF lines) */
	size_t n;	    /* length of in */
	const char *hashed; /* the bytes that must be hashed */
	size_t hn;	    /* length of hashed */
	const char *id;	    /* expected Message-ID */
};

static const struct msg_case msg_cases[] = {
    {"no Received:", S(BASE), S(BASE), "a1@example.org"},
    {"one leading Received:", S(RCVD BASE), S(BASE), "a1@example.org"},
    {"two leading Received:", S(RCVD RCVD BASE), S(BASE), "a1@example.org"},
    {"folded Received: (space)",
     S("Received: from a.example\r\n by b.example;\r\n Mon, 1 Jan 2024\r\n" BASE), S(BASE),
     "a1@example.org"},
    {"folded Received: (tab)", S("Received: from a\r\n\tby b\r\n" BASE), S(BASE), "a1@example.org"},
    {"two Received:, both folded",
     S("Received: from a\r\n by b\r\nReceived: from c\r\n\tby d;\r\n  date\r\n" BASE), S(BASE),
     "a1@example.org"},
    {"folded then unfolded Received:", S("Received: from a\r\n by b\r\n" RCVD BASE), S(BASE),
     "a1@example.org"},
    {"Received: with an empty value", S("Received:\r\n" BASE), S(BASE), "a1@example.org"},
    {"Received: name in any case", S("RECEIVED: x\r\nreceived: y\r\nReCeIvEd: z\r\n" BASE), S(BASE),
     "a1@example.org"},
    {"Received: block then the empty line", S(RCVD "\r\nbody\r\n"), S("\r\nbody\r\n"), "-"},

    /* not skipped */
    {"Received: below another field is hashed", S("Subject: hi\r\n" RCVD "\r\nbody\r\n"),
     S("Subject: hi\r\n" RCVD "\r\nbody\r\n"), "-"},
    {"Received: after a skipped block and another field",
     S(RCVD "Subject: hi\r\n" RCVD "\r\nx\r\n"), S("Subject: hi\r\n" RCVD "\r\nx\r\n"), "-"},
    {"Received: in the body is hashed", S("Subject: hi\r\n\r\n" RCVD),
     S("Subject: hi\r\n\r\n" RCVD), "-"},
    {"Received-SPF: is another field", S("Received-SPF: pass\r\n" BASE),
     S("Received-SPF: pass\r\n" BASE), "a1@example.org"},
    {"X-Received: is another field", S("X-Received: x\r\n" BASE), S("X-Received: x\r\n" BASE),
     "a1@example.org"},
    {"Received without colon", S("Received x\r\n" BASE), S("Received x\r\n" BASE),
     "a1@example.org"},
    {"leading blank line is not a fold", S(" folded?\r\n" BASE), S(" folded?\r\n" BASE),
     "a1@example.org"},
    {"a fold after a hashed field is hashed", S(RCVD "Subject: a\r\n b\r\n\r\nx\r\n"),
     S("Subject: a\r\n b\r\n\r\nx\r\n"), "-"},
    {"header-less body", S("just a body\r\n"), S("just a body\r\n"), "-"},

    /* edges */
    {"empty message", S(""), S(""), "-"},
    {"only a Received: field", S(RCVD), S(""), "-"},
    {"ends inside a Received: prefix", S("Rece"), S("Rece"), "-"},
    {"ends inside the Received: name", S("Received"), S("Received"), "-"},
};

Test(tool_msg, table_of_digests_under_every_chunking)
{
	for (size_t i = 0; i < sizeof(msg_cases) / sizeof(msg_cases[0]); i++) {
		const struct msg_case *mc = &msg_cases[i];
		struct split_log want = {0};
		want_trace(&want, mc->hashed, mc->hn, mc->n, mc->id);
		expect_msg(mc->in, mc->n, split_log_str(&want), mc->label);
		split_log_free(&want);
	}
}

static uint64_t
digest(const char *in, size_t n, char *id, size_t idcap, uint64_t *size)
{
	static struct tool_msg m;
	tool_msg_init(&m);
	tool_msg_feed(&m, in, n);
	uint64_t h = tool_msg_final(&m);
	snprintf(id, idcap, "%s", m.id);
	*size = m.size;
	return h;
}

Test(tool_msg, known_digest_of_a_small_message)
{
	/*
	 * 0x56ff39c0a95df83c = XXH64 seed 0 of the 52 bytes of BASE, computed
	 * independently with python3 ctypes on libxxhash.so.0:
	 *   x = ctypes.CDLL("libxxhash.so.0"); x.XXH64.restype = ctypes.c_uint64
	 *   x.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
	 *   hex(x.XXH64(b"Subject: hi\r\nMessage-ID: <a1@example.org>\r\n\r\nhello\r\n", 52, 0))
	 */
	const uint64_t want = 0x56ff39c0a95df83cull;
	static const struct {
		const char *label;
		const char *in;
		size_t n;
	} rows[] = {
	    {"bare", S(BASE)},
	    {"one Received:", S(RCVD BASE)},
	    {"two Received:, folded", S("Received: from a\r\n by b\r\n" RCVD BASE)},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char id[TOOL_MSG_MAX_ID + 1];
		uint64_t size;
		uint64_t h = digest(rows[i].in, rows[i].n, id, sizeof(id), &size);
		cr_expect_eq(h, want, "%s: hash %016llx", rows[i].label, (unsigned long long)h);
		cr_expect_eq(size, 52, "%s: size %llu", rows[i].label, (unsigned long long)size);
		cr_expect_str_eq(id, "a1@example.org", "%s", rows[i].label);
	}
	/* XXH64 of nothing, a published constant: pins the seed */
	char id[TOOL_MSG_MAX_ID + 1];
	uint64_t size;
	cr_expect_eq(digest("", 0, id, sizeof(id), &size), 0xef46db3751d8e999ull);
	cr_expect_eq(size, 0);
}

struct id_case {
	const char *label; /* what the row shows */
	const char *in;	   /* message content */
	size_t n;	   /* length of in */
	const char *id;	   /* expected ledger Message-ID */
};

static const struct id_case id_cases[] = {
    {"with <>", S("Message-ID: <a@b.example>\r\n\r\nx\r\n"), "a@b.example"},
    {"without <>", S("Message-ID: a@b.example\r\n\r\nx\r\n"), "a@b.example"},
    {"name in any case", S("message-id: <a@b>\r\n\r\nx\r\n"), "a@b"},
    {"MESSAGE-ID", S("MESSAGE-ID:<a@b>\r\n\r\nx\r\n"), "a@b"},
    {"blanks around", S("Message-ID: \t <a@b> \t\r\n\r\nx\r\n"), "a@b"},
    {"folded value", S("Message-ID:\r\n <a@b>\r\n\r\nx\r\n"), "a@b"},
    {"value folded across lines", S("Message-ID: <a@\r\n b>\r\n\r\nx\r\n"), "a@b"},
    {"after other fields", S("From: x@y\r\nTo: z@w\r\nMessage-ID: <m@n>\r\n\r\nx\r\n"), "m@n"},
    {"after leading Received:", S(RCVD "Message-ID: <m@n>\r\n\r\nx\r\n"), "m@n"},
    {"first of two", S("Message-ID: <one@x>\r\nMessage-ID: <two@x>\r\n\r\nx\r\n"), "one@x"},
    {"the last header field", S("Subject: s\r\nMessage-ID: <m@n>\r\n\r\n"), "m@n"},
    {"none", S("Subject: s\r\n\r\nx\r\n"), "-"},
    {"empty value", S("Message-ID:\r\n\r\nx\r\n"), "-"},
    {"empty <>", S("Message-ID: <>\r\n\r\nx\r\n"), "-"},
    {"in the body only", S("Subject: s\r\n\r\nMessage-ID: <m@n>\r\n"), "-"},
    {"other field ending in Message-ID", S("X-Message-ID: <m@n>\r\n\r\nx\r\n"), "-"},
    {"Message-ID without colon", S("Message-ID <m@n>\r\n\r\nx\r\n"), "-"},
    {"text after > is dropped", S("Message-ID: <m@n> (comment)\r\n\r\nx\r\n"), "m@n"},
    {"non-printable bytes become _", S("Message-ID: <a\x01z\xff@n>\r\n\r\nx\r\n"), "a_z_@n"},
};

Test(tool_msg, message_id_with_and_without_angle_brackets)
{
	for (size_t i = 0; i < sizeof(id_cases) / sizeof(id_cases[0]); i++) {
		const struct id_case *ic = &id_cases[i];
		/* every row is hashed whole unless it starts with Received: */
		size_t skip = strncmp(ic->in, RCVD, sizeof(RCVD) - 1) == 0 ? sizeof(RCVD) - 1 : 0;
		struct split_log want = {0};
		want_trace(&want, ic->in + skip, ic->n - skip, ic->n, ic->id);
		expect_msg(ic->in, ic->n, split_log_str(&want), ic->label);
		split_log_free(&want);
	}
}

Test(tool_msg, long_message_id_is_cut_at_max_id)
{
	/* ids of MAX_ID - 1, MAX_ID and MAX_ID + 1 bytes: at most MAX_ID are kept */
	for (size_t len = TOOL_MSG_MAX_ID - 1; len <= TOOL_MSG_MAX_ID + 1; len++) {
		char in[TOOL_MSG_MAX_ID + 64];
		size_t n = 0;
		memcpy(in, "Message-ID: ", 12);
		n = 12;
		memset(in + n, 'x', len);
		n += len;
		memcpy(in + n, "\r\n\r\nb\r\n", 7);
		n += 7;
		char id[TOOL_MSG_MAX_ID + 1];
		uint64_t size;
		uint64_t h = digest(in, n, id, sizeof(id), &size);
		size_t keep = len < TOOL_MSG_MAX_ID ? len : TOOL_MSG_MAX_ID;
		cr_expect_eq(strlen(id), keep, "id of %zu: kept %zu", len, strlen(id));
		cr_expect_eq(strspn(id, "x"), keep, "id of %zu", len);
		cr_expect_eq(h, XXH64(in, n, 0), "id of %zu: the whole message is hashed", len);
		cr_expect_eq(size, n);
	}
}

Test(tool_msg, long_header_line_does_not_overflow_and_is_hashed)
{
	/* a Subject longer than TOOL_MSG_MAX_LINE, then the Message-ID */
	size_t sub = TOOL_MSG_MAX_LINE + 500, n = 0;
	char *in = malloc(sub + 128);
	memcpy(in, "Subject: ", 9);
	n = 9;
	memset(in + n, 's', sub);
	n += sub;
	const char tail[] = "\r\nMessage-ID: <m@n>\r\n\r\nbody\r\n";
	memcpy(in + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	struct split_log want = {0};
	want_trace(&want, in, n, n, "m@n");
	expect_msg(in, n, split_log_str(&want), "long Subject");
	split_log_free(&want);
	free(in);
}

Test(tool_msg, digest_is_the_same_for_random_received_blocks)
{
	/* any number of leading Received: fields, folded any way, leave the digest alone */
	static const char *const parts[] = {
	    "Received: from x\r\n", "Received: by y\r\n\twith ESMTP\r\n",
	    "received:\r\n  id 1\r\n   for <a@b>;\r\n", "RECEIVED: z\r\n", "Received: a\r\n \r\n"};
	uint64_t seed = 0x853c49e6748fea9bull;
	char id[TOOL_MSG_MAX_ID + 1];
	uint64_t size;
	for (int round = 0; round < 50; round++) {
		char in[512];
		size_t n = 0;
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned k = (unsigned)(seed >> 60) % 5;
		for (unsigned j = 0; j < k; j++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			const char *p = parts[(seed >> 33) % 5];
			memcpy(in + n, p, strlen(p));
			n += strlen(p);
		}
		memcpy(in + n, BASE, sizeof(BASE) - 1);
		n += sizeof(BASE) - 1;
		cr_expect_eq(digest(in, n, id, sizeof(id), &size), 0x56ff39c0a95df83cull,
			     "round %d, %u Received: fields", round, k);
		cr_expect_eq(size, 52);
		cr_expect_str_eq(id, "a1@example.org");
	}
}

Test(tool_msg, count_only_still_sizes_and_finds_the_message_id)
{
	/* the sink without --ledger clears digest: the same size, total and Message-ID as
	 * with the digest, only the hash is left out */
	static const char in[] = RCVD BASE;
	struct tool_msg with, without;

	tool_msg_init(&with);
	tool_msg_init(&without);
	without.digest = false;
	tool_msg_feed(&with, in, sizeof(in) - 1);
	tool_msg_feed(&without, in, sizeof(in) - 1);
	cr_expect_eq(tool_msg_final(&with), 0x56ff39c0a95df83cull);
	(void)tool_msg_final(&without);
	cr_expect_eq(without.size, with.size);
	cr_expect_eq(without.size, 52);
	cr_expect_eq(without.total, sizeof(in) - 1);
	cr_expect_str_eq(without.id, "a1@example.org");
}
