/*
 * test_srs.c -- auth/srs: known answers from Mail::SRS and postsrsd, round
 * trips, SRS1 chains, secret rotation, forged/expired/wrapped timestamps,
 * case folding, malformed input, limits at N-1/N/N+1, the secrets file.
 *
 * The vectors were produced by the two independent implementations in
 * Debian 12 (libmail-srs-perl 0.31-9, postsrsd 1.10-2+b1) with the secrets
 * below and domain fwd.example; every row names its source. To regenerate:
 *
 *   Mail::SRS (Guarded, the default class), clock fixed by overriding time():
 *
 *	msrs() { # T=UNIX-TIME S=SECRET[,SECRET...] msrs forward|reverse ADDRESS...
 *		perl -e 'BEGIN { *CORE::GLOBAL::time = sub { $ENV{T} } } use Mail::SRS;
 *		my $s = Mail::SRS->new(Secret => [split /,/, $ENV{S}], MaxAge => 3);
 *		my $op = shift; for my $a (@ARGV) { my $r = eval { $s->$op($a, "fwd.example") };
 *		$r = "ERROR: $@" unless defined $r; chomp $r; print "$a -> $r\n" }' "$@"
 *	}
 *	A=sluice-test-secret-1 B=sluice-old-secret-0 T0=1700000000 D=86400
 *	T=$T0 S=$A msrs forward alice@example.com Alice.Smith@Example.COM \
 *		user=name+tag@sub.example.org SRS0=abcd=TT=orig.example=bob@fwd1.example \
 *		SRS0+abcd=TT=orig.example=bob@fwd1.example \
 *		srs0=abcd=tt=orig.example=bob@FWD1.example \
 *		SRS1=ZZZZ=fwd1.example==abcd=TT=orig.example=bob@fwd2.example \
 *		carol@fwd.example CAROL@FWD.Example "$(printf 'jos\xc3\xa9@example.com')" \
 *		postmaster@xn--bcher-kva.example
 *	for t in 0 $((D*1023)) $((D*1024)) $((D*1055+86399)); do
 *		T=$t S=$A msrs forward alice@example.com; done
 *	T=$((T0-2*D)) S=$B msrs forward alice@example.com \
 *		SRS0=abcd=TT=orig.example=bob@fwd1.example       # the old secret
 *	T=$((T0-3*D)) S=$A msrs forward alice@example.com	  # 3, 4 days old and
 *	T=$((T0-4*D)) S=$A msrs forward alice@example.com	  # from tomorrow
 *	T=$((T0+D)) S=$A msrs forward alice@example.com
 *	T=$((20479*D)) S=$A msrs forward alice@example.com	  # day 1023 mod 1024
 *	T=$T0 S=$A,$B msrs reverse ADDRESS...		  # each reverse row at T0
 *	T=$((20481*D)) S=$A msrs reverse SRS0=0n/Z=77=example.com=alice@fwd.example
 *	T=$((20483*D)) S=$A msrs reverse SRS0=0n/Z=77=example.com=alice@fwd.example
 *
 *   postsrsd (its clock fixed with faketime; lookups in Postfix's tcp_table
 *   protocol; its MaxAge is fixed at 21 days, so only our 3 days expire):
 *
 *	printf '%s\n' sluice-test-secret-1 sluice-old-secret-0 >secrets
 *	TZ=UTC faketime -f '@2023-11-14 22:13:20' postsrsd -s secrets -d fwd.example \
 *		-a SEP -l 127.0.0.1 -f 24101 -r 24102 -t 5 -p pid &	# SEP: = then +
 *	q() { exec 3<>/dev/tcp/127.0.0.1/$1; printf 'get %s\n' "$2" >&3; head -1 <&3; }
 *	q 24101 ADDRESS		# forward: "200 SRS0=..."
 *	q 24102 ADDRESS		# reverse: "200 alice@example.com"
 *	kill $(cat pid)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/srs.h"
#include "core/err.h"

#define DOMAIN	   "fwd.example"
#define SECRET_NEW "sluice-test-secret-1"
#define SECRET_OLD "sluice-old-secret-0"
#define DAY	   86400
#define T0	   1700000000 /* 2023-11-14 22:13:20 UTC: day 19675, timestamp "G3" */

static char err[512];

/* Our domain with the new secret signing and the old one still accepted. */
static void
setup(struct srs *s, const char *secrets)
{
	cr_assert_eq(srs_init(s, DOMAIN, SRS_DEFAULT_MAX_AGE), 0);
	cr_assert_eq(srs_parse_secrets(s, secrets, strlen(secrets), "secrets", err, sizeof(err)), 0,
		     "%s", err);
}

static void
setup_rotation(struct srs *s)
{
	setup(s, SECRET_NEW "\n" SECRET_OLD "\n");
}

static ssize_t
fwd(const struct srs *s, const char *in, int64_t now, char out[SRS_ADDR_BUF])
{
	return srs_forward(s, in, strlen(in), now, out, SRS_ADDR_BUF);
}

static enum srs_status
rev(const struct srs *s, const char *in, int64_t now, char out[SRS_ADDR_BUF])
{
	return srs_reverse(s, in, strlen(in), now, out, SRS_ADDR_BUF);
}

/* ---- known answers ---- */

struct fwd_vec {
	int64_t now;
	const char *in, *out;
	const char *src; /* which implementation gave out */
};

static const struct fwd_vec fwd_vecs[] = {
    {T0, "alice@example.com", "SRS0=J3X9=G3=example.com=alice@fwd.example", "Mail::SRS, postsrsd"},
    {T0, "Alice.Smith@Example.COM", "SRS0=dZwv=G3=Example.COM=Alice.Smith@fwd.example",
     "Mail::SRS, postsrsd"},
    {T0, "user=name+tag@sub.example.org", "SRS0=kqX+=G3=sub.example.org=user=name+tag@fwd.example",
     "Mail::SRS"},
    {T0, "SRS0=abcd=TT=orig.example=bob@fwd1.example",
     "SRS1=x5nw=fwd1.example==abcd=TT=orig.example=bob@fwd.example", "Mail::SRS, postsrsd"},
    {T0, "SRS0+abcd=TT=orig.example=bob@fwd1.example",
     "SRS1=BLPz=fwd1.example=+abcd=TT=orig.example=bob@fwd.example", "Mail::SRS"},
    {T0, "srs0=abcd=tt=orig.example=bob@FWD1.example",
     "SRS1=x5nw=FWD1.example==abcd=tt=orig.example=bob@fwd.example", "Mail::SRS"},
    {T0, "SRS1=ZZZZ=fwd1.example==abcd=TT=orig.example=bob@fwd2.example",
     "SRS1=x5nw=fwd1.example==abcd=TT=orig.example=bob@fwd.example", "Mail::SRS, postsrsd"},
    {T0, "carol@fwd.example", "carol@fwd.example", "Mail::SRS, postsrsd"},
    {T0, "CAROL@FWD.Example", "CAROL@FWD.Example", "Mail::SRS"},
    {T0, "jos\xc3\xa9@example.com", "SRS0=JIxo=G3=example.com=jos\xc3\xa9@fwd.example",
     "Mail::SRS"},
    {T0, "postmaster@xn--bcher-kva.example",
     "SRS0=/n8O=G3=xn--bcher-kva.example=postmaster@fwd.example", "Mail::SRS"},
    {0, "alice@example.com", "SRS0=MRHK=AA=example.com=alice@fwd.example", "Mail::SRS"},
    {DAY * 1023, "alice@example.com", "SRS0=0n/Z=77=example.com=alice@fwd.example", "Mail::SRS"},
    {DAY * 1024, "alice@example.com", "SRS0=MRHK=AA=example.com=alice@fwd.example", "Mail::SRS"},
    {DAY * 1055 + 86399, "alice@example.com", "SRS0=bkM2=A7=example.com=alice@fwd.example",
     "Mail::SRS"},
};

Test(srs, forward_matches_mail_srs_and_postsrsd)
{
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(fwd_vecs) / sizeof(fwd_vecs[0]); i++) {
		const struct fwd_vec *v = &fwd_vecs[i];
		ssize_t n = fwd(&s, v->in, v->now, out);

		cr_expect_eq(n, (ssize_t)strlen(v->out), "%s: length %zd", v->in, n);
		cr_expect_str_eq(out, v->out, "%s at %lld (%s)", v->in, (long long)v->now, v->src);
	}
	srs_fini(&s);
}

struct rev_vec {
	int64_t now;
	const char *in;
	enum srs_status st;
	const char *out; /* on SRS_OK */
	const char *src; /* who made in; who agrees with st */
};

static const struct rev_vec rev_vecs[] = {
    {T0, "SRS0=J3X9=G3=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "Mail::SRS, postsrsd"},
    {T0, "SRS0+J3X9=G3=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "postsrsd -a +"},
    {T0, "SRS0=dZwv=G3=Example.COM=Alice.Smith@fwd.example", SRS_OK, "Alice.Smith@Example.COM",
     "Mail::SRS, postsrsd"},
    {T0, "srs0=j3x9=g3=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "lowercased; Mail::SRS accepts (with a warning), postsrsd accepts"},
    {T0, "SRS0=kqX+=G3=sub.example.org=user=name+tag@fwd.example", SRS_OK,
     "user=name+tag@sub.example.org", "Mail::SRS"},
    {T0, "SRS0=JIxo=G3=example.com=jos\xc3\xa9@fwd.example", SRS_OK, "jos\xc3\xa9@example.com",
     "Mail::SRS"},
    {T0, "SRS0=/n8O=G3=xn--bcher-kva.example=postmaster@fwd.example", SRS_OK,
     "postmaster@xn--bcher-kva.example", "Mail::SRS"},
    {T0, "SRS0=0B4V=GZ=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "Mail::SRS, old secret, 2 days old; postsrsd agrees"},
    {T0, "SRS1=KN6z=fwd1.example==abcd=TT=orig.example=bob@fwd.example", SRS_OK,
     "SRS0=abcd=TT=orig.example=bob@fwd1.example", "Mail::SRS, old secret; postsrsd agrees"},
    {T0, "SRS1=x5nw=fwd1.example==abcd=TT=orig.example=bob@fwd.example", SRS_OK,
     "SRS0=abcd=TT=orig.example=bob@fwd1.example", "Mail::SRS, postsrsd"},
    {T0, "SRS1+x5nw=fwd1.example==abcd=TT=orig.example=bob@fwd.example", SRS_OK,
     "SRS0=abcd=TT=orig.example=bob@fwd1.example", "postsrsd -a +"},
    {T0, "SRS0=gvsc=GY=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "Mail::SRS, 3 days old: the last valid day"},
    {T0, "SRS0=PB7y=GX=example.com=alice@fwd.example", SRS_EXPIRED, NULL,
     "Mail::SRS, 4 days old; Mail::SRS: Invalid timestamp"},
    {T0, "SRS0=l/6/=G4=example.com=alice@fwd.example", SRS_EXPIRED, NULL,
     "Mail::SRS, from tomorrow (1023 days old); Mail::SRS: Invalid timestamp"},
    {T0, "SRS0=J3X8=G3=example.com=alice@fwd.example", SRS_BAD_HASH, NULL,
     "one hash character changed; Mail::SRS: Invalid hash; postsrsd: Hash invalid"},
    {DAY * 20481, "SRS0=0n/Z=77=example.com=alice@fwd.example", SRS_OK, "alice@example.com",
     "Mail::SRS, day 1023 read on day 1 of the next cycle"},
    {DAY * 20483, "SRS0=0n/Z=77=example.com=alice@fwd.example", SRS_EXPIRED, NULL,
     "Mail::SRS, 4 days across the wrap; Mail::SRS: Invalid timestamp"},
};

Test(srs, reverse_reads_mail_srs_and_postsrsd)
{
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(rev_vecs) / sizeof(rev_vecs[0]); i++) {
		const struct rev_vec *v = &rev_vecs[i];
		enum srs_status st = rev(&s, v->in, v->now, out);

		cr_expect_eq(st, v->st, "%s (%s): %s", v->in, v->src, srs_status_text(st));
		cr_expect_str_eq(out, v->st == SRS_OK ? v->out : "", "%s (%s)", v->in, v->src);
	}
	srs_fini(&s);
}

/* ---- round trips and SRS1 chains ---- */

Test(srs, round_trip_gives_back_the_sender)
{
	static const char *const senders[] = {
	    "alice@example.com",
	    "Alice.Smith@Example.COM",
	    "a@b.c",
	    "user=with=separators@example.org",
	    "x+tag-y_z!#$%&'*/?^`{|}~@mail.example.net",
	    "SRS0=abcd=TT=orig.example=bob@fwd1.example",
	    "SRS0-abcd=TT=orig.example=bob@fwd1.example",
	    "SRS1=abcd@fwd2.example", /* SRS1 without its fields: wrapped as plain */
	    "SRS1=abcd=host.example=nosep@fwd2.example",
	    "srs0@example.com", /* a tag without separator is a plain local part */
	    "jos\xc3\xa9@b\xc3\xbc"
	    "cher.example",
	};
	static const int64_t times[] = {0, T0, DAY * 1023 + 1, DAY * 1024};
	struct srs s;
	char a[SRS_ADDR_BUF], b[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
		for (size_t i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
			cr_assert_gt(fwd(&s, senders[i], times[t], a), 0, "%s", senders[i]);
			cr_expect_eq(rev(&s, a, times[t] + 3 * DAY, b), SRS_OK, "%s -> %s",
				     senders[i], a);
			cr_expect_str_eq(b, senders[i], "via %s", a);
		}
	}
	srs_fini(&s);
}

Test(srs, srs1_chain_bounces_back_hop_by_hop)
{
	struct srs f1, f2, f3;
	char s0[SRS_ADDR_BUF], s1[SRS_ADDR_BUF], s1b[SRS_ADDR_BUF], out[SRS_ADDR_BUF];
	const char *orig = "alice@example.com";

	cr_assert_eq(srs_init(&f1, "fwd1.example", 3), 0);
	cr_assert_eq(srs_parse_secrets(&f1, "first-forwarder-secret", 22, "a", err, sizeof(err)),
		     0);
	cr_assert_eq(srs_init(&f2, "fwd2.example", 3), 0);
	cr_assert_eq(srs_parse_secrets(&f2, "second-forwarder-secret", 23, "b", err, sizeof(err)),
		     0);
	cr_assert_eq(srs_init(&f3, "fwd3.example", 3), 0);
	cr_assert_eq(srs_parse_secrets(&f3, "third-forwarder-secret", 22, "c", err, sizeof(err)),
		     0);

	/* alice -> fwd1 (SRS0) -> fwd2 (SRS1) -> fwd3 (SRS1, still naming fwd1) */
	cr_assert_gt(fwd(&f1, orig, T0, s0), 0);
	cr_assert(strncmp(s0, "SRS0=", 5) == 0 && strstr(s0, "@fwd1.example"), "%s", s0);
	cr_assert_gt(fwd(&f2, s0, T0, s1), 0);
	cr_assert(strncmp(s1, "SRS1=", 5) == 0, "%s", s1);
	cr_assert(strstr(s1, "=fwd1.example==") != NULL && strstr(s1, "@fwd2.example"), "%s", s1);
	cr_assert_gt(fwd(&f3, s1, T0, s1b), 0);
	cr_assert(strncmp(s1b, "SRS1=", 5) == 0, "%s", s1b);
	cr_assert(strstr(s1b, "=fwd1.example==") != NULL && strstr(s1b, "@fwd3.example"), "%s",
		  s1b);

	/* the bounce goes from fwd3 or fwd2 straight to fwd1, then to alice */
	cr_expect_eq(rev(&f3, s1b, T0 + DAY, out), SRS_OK);
	cr_expect_str_eq(out, s0);
	cr_expect_eq(rev(&f2, s1, T0 + DAY, out), SRS_OK);
	cr_expect_str_eq(out, s0);
	cr_expect_eq(rev(&f1, s0, T0 + DAY, out), SRS_OK);
	cr_expect_str_eq(out, orig);

	/* nobody reads another's addresses */
	cr_expect_eq(rev(&f2, s1b, T0, out), SRS_NOT_SRS);
	memcpy(strrchr(s1, '@'), "@fwd3.example", 14);
	cr_expect_eq(rev(&f3, s1, T0, out), SRS_BAD_HASH, "fwd2's SRS1 moved to fwd3's domain");
	srs_fini(&f1);
	srs_fini(&f2);
	srs_fini(&f3);
}

Test(srs, own_domain_and_null_sender_are_not_rewritten)
{
	struct srs s;
	char out[SRS_ADDR_BUF], srs0[SRS_ADDR_BUF];

	setup_rotation(&s);
	cr_expect_eq(srs_forward(&s, "", 0, T0, out, sizeof(out)), 0);
	cr_expect_str_eq(out, "", "<> stays <>");
	cr_assert_gt(fwd(&s, "alice@example.com", T0, srs0), 0);
	cr_expect_eq(fwd(&s, srs0, T0, out), (ssize_t)strlen(srs0));
	cr_expect_str_eq(out, srs0, "our own SRS0 is never wrapped again");
	cr_expect_gt(fwd(&s, "\"quoted local\"@Fwd.Example", T0, out), 0);
	cr_expect_str_eq(out, "\"quoted local\"@Fwd.Example");
	srs_fini(&s);
}

/* ---- secrets and rotation ---- */

Test(srs, rotation_signs_with_the_first_and_accepts_all)
{
	struct srs both, new_only, old_only;
	char a[SRS_ADDR_BUF], b[SRS_ADDR_BUF], out[SRS_ADDR_BUF];

	setup_rotation(&both);
	setup(&new_only, SECRET_NEW "\n");
	setup(&old_only, SECRET_OLD "\n");
	cr_assert_gt(fwd(&both, "alice@example.com", T0, a), 0);
	cr_assert_gt(fwd(&new_only, "alice@example.com", T0, b), 0);
	cr_expect_str_eq(a, b, "the first secret signs");
	cr_assert_gt(fwd(&old_only, "alice@example.com", T0, b), 0);
	cr_expect_str_neq(a, b);
	cr_expect_eq(rev(&both, b, T0, out), SRS_OK, "old secret still accepted");
	cr_expect_str_eq(out, "alice@example.com");
	cr_expect_eq(rev(&new_only, b, T0, out), SRS_BAD_HASH, "retired secret");
	srs_fini(&both);
	srs_fini(&new_only);
	srs_fini(&old_only);
}

struct secrets_case {
	const char *text;
	size_t len; /* 0: strlen(text) */
	int rc;
	const char *err;
};

static const struct secrets_case secrets_errors[] = {
    {"", 0, -SLUICE_ESYNTAX, "secrets: no secret (one per line; the first signs)"},
    {"# rotated on 2024-01-01\n\n \t\n", 0, -SLUICE_ESYNTAX,
     "secrets: no secret (one per line; the first signs)"},
    {" " SECRET_NEW "\n", 0, -SLUICE_ESYNTAX, "secrets:1: secret has leading or trailing blanks"},
    {"# c\n" SECRET_NEW "\t\n", 0, -SLUICE_ESYNTAX,
     "secrets:2: secret has leading or trailing blanks"},
    {SECRET_NEW "\nsluice-\x01-secret-0\n", 0, -SLUICE_ESYNTAX,
     "secrets:2: control character 0x01 in secret"},
    {"sluice-test-\0secret-1\n", 22, -SLUICE_ESYNTAX,
     "secrets:1: control character 0x00 in secret"},
    {"fifteen-bytes-x\n", 0, -SLUICE_ESYNTAX, "secrets:1: secret of 15 bytes (use 16 to 256)"},
};

Test(srs, secrets_errors_name_file_and_line)
{
	struct srs s;

	cr_assert_eq(srs_init(&s, DOMAIN, 3), 0);
	for (size_t i = 0; i < sizeof(secrets_errors) / sizeof(secrets_errors[0]); i++) {
		const struct secrets_case *c = &secrets_errors[i];
		size_t len = c->len != 0 ? c->len : strlen(c->text);

		memset(err, 'X', sizeof(err));
		cr_expect_eq(srs_parse_secrets(&s, c->text, len, "secrets", err, sizeof(err)),
			     c->rc, "case %zu", i);
		cr_expect_str_eq(err, c->err, "case %zu", i);
		cr_expect_eq(s.nsecrets, 0, "case %zu: nothing kept", i);
	}
	srs_fini(&s);
}

Test(srs, secret_length_and_count_limits)
{
	struct srs s;
	char text[SRS_MAX_SECRETS * 32 + SRS_MAX_SECRET + 8];
	size_t n = 0;

	cr_assert_eq(srs_init(&s, DOMAIN, 3), 0);
	/* lengths: MIN and MAX pass, MAX + 1 fails (MIN - 1: secrets_errors above) */
	memset(text, 's', SRS_MAX_SECRET + 1);
	cr_expect_eq(srs_parse_secrets(&s, text, SRS_MIN_SECRET, "f", err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_eq(s.secrets[0].len, SRS_MIN_SECRET);
	cr_expect_eq(srs_parse_secrets(&s, text, SRS_MAX_SECRET, "f", err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_eq(srs_parse_secrets(&s, text, SRS_MAX_SECRET + 1, "f", err, sizeof(err)),
		     -SLUICE_ESYNTAX);
	cr_expect_str_eq(err, "f:1: secret of 257 bytes (use 16 to 256)");

	/* count: SRS_MAX_SECRETS pass, one more fails on its line */
	for (int i = 0; i < SRS_MAX_SECRETS; i++)
		n += (size_t)sprintf(text + n, "%s%02d\n", "rotation-secret-", i);
	cr_expect_eq(srs_parse_secrets(&s, text, n, "f", err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(s.nsecrets, SRS_MAX_SECRETS);
	n += (size_t)sprintf(text + n, "\n# one too many\nrotation-secret-xx\n");
	cr_expect_eq(srs_parse_secrets(&s, text, n, "f", err, sizeof(err)), -SLUICE_ELIMIT);
	cr_expect_str_eq(err, "f:19: more than 16 secrets");
	cr_expect_eq(s.nsecrets, 0);
	srs_fini(&s);
}

Test(srs, secrets_with_crlf_and_no_final_newline)
{
	struct srs crlf, lf;
	char a[SRS_ADDR_BUF], b[SRS_ADDR_BUF];

	setup(&crlf, "# secrets\r\n" SECRET_NEW "\r\n\r\n" SECRET_OLD);
	setup(&lf, SECRET_NEW "\n" SECRET_OLD "\n");
	cr_expect_eq(crlf.nsecrets, 2);
	cr_expect_eq(crlf.secrets[1].len, strlen(SECRET_OLD));
	cr_assert_gt(fwd(&crlf, "alice@example.com", T0, a), 0);
	cr_assert_gt(fwd(&lf, "alice@example.com", T0, b), 0);
	cr_expect_str_eq(a, b, "CR is not part of the secret");
	cr_expect_str_eq(a, "SRS0=J3X9=G3=example.com=alice@fwd.example");
	srs_fini(&crlf);
	srs_fini(&lf);
}

/* Write text[0..len) to a fresh temp file; its name goes to path. */
static void
temp_file_n(char path[64], const char *text, size_t len)
{
	int fd;

	snprintf(path, 64, "/tmp/sluice-test-srs-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static void
temp_file(char path[64], const char *text)
{
	temp_file_n(path, text, strlen(text));
}

Test(srs, load_secrets_file)
{
	struct srs s;
	char path[64], msg[600], *big;

	cr_assert_eq(srs_init(&s, DOMAIN, 3), 0);
	temp_file(path, "# sluice SRS\n" SECRET_NEW "\n" SECRET_OLD "\n");
	cr_expect_eq(srs_load_secrets(&s, path, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(s.nsecrets, 2);
	unlink(path);

	temp_file(path, "\n\n" SECRET_NEW " \n");
	cr_expect_eq(srs_load_secrets(&s, path, err, sizeof(err)), -SLUICE_ESYNTAX);
	snprintf(msg, sizeof(msg), "%s:3: secret has leading or trailing blanks", path);
	cr_expect_str_eq(err, msg);
	unlink(path);

	temp_file(path, "");
	cr_expect_eq(srs_load_secrets(&s, path, err, sizeof(err)), -SLUICE_ESYNTAX);
	snprintf(msg, sizeof(msg), "%s: no secret (one per line; the first signs)", path);
	cr_expect_str_eq(err, msg);
	unlink(path);

	big = malloc(SRS_MAX_SECRETS_FILE + 1);
	memset(big, '#', SRS_MAX_SECRETS_FILE + 1);
	temp_file_n(path, big, SRS_MAX_SECRETS_FILE); /* N: a file of comments, no secret */
	cr_expect_eq(srs_load_secrets(&s, path, err, sizeof(err)), -SLUICE_ESYNTAX, "%s", err);
	unlink(path);
	temp_file_n(path, big, SRS_MAX_SECRETS_FILE + 1); /* N + 1 */
	cr_expect_eq(srs_load_secrets(&s, path, err, sizeof(err)), -EFBIG);
	snprintf(msg, sizeof(msg), "%s: file too large (max 65536 bytes)", path);
	cr_expect_str_eq(err, msg);
	unlink(path);
	free(big);
	big = NULL;

	cr_expect_eq(srs_load_secrets(&s, "/nonexistent/srs.secret", err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, "/nonexistent/srs.secret: No such file or directory");
	srs_fini(&s);
}

Test(srs, init_checks_domain_and_max_age)
{
	struct srs s;
	char long_domain[SRS_MAX_DOMAIN + 2];

	cr_expect_eq(srs_init(&s, "", 3), -SLUICE_ESYNTAX);
	cr_expect_eq(srs_init(&s, "fwd=example", 3), -SLUICE_ESYNTAX);
	cr_expect_eq(srs_init(&s, "[192.0.2.1]", 3), -SLUICE_ESYNTAX);
	cr_expect_eq(srs_init(&s, "a@fwd.example", 3), -SLUICE_ESYNTAX);
	memset(long_domain, 'a', sizeof(long_domain));
	long_domain[SRS_MAX_DOMAIN] = '\0';
	cr_expect_eq(srs_init(&s, long_domain, 3), 0);
	long_domain[SRS_MAX_DOMAIN] = 'a';
	long_domain[SRS_MAX_DOMAIN + 1] = '\0';
	cr_expect_eq(srs_init(&s, long_domain, 3), -SLUICE_ESYNTAX);
	cr_expect_eq(srs_init(&s, DOMAIN, 0), -ERANGE);
	cr_expect_eq(srs_init(&s, DOMAIN, 1), 0);
	cr_expect_eq(srs_init(&s, DOMAIN, SRS_MAX_MAX_AGE), 0);
	cr_expect_eq(srs_init(&s, DOMAIN, SRS_MAX_MAX_AGE + 1), -ERANGE);
	cr_expect_eq(s.domain_len, 0, "zeroed on error");
}

/* ---- forged, expired, wrapped ---- */

Test(srs, forged_hashes_are_refused)
{
	struct srs s;
	char a[SRS_ADDR_BUF], out[SRS_ADDR_BUF];
	static const char *const forged[] = {
	    "SRS0=J3X=G3=example.com=alice@fwd.example",   /* 3 characters */
	    "SRS0=J3X9A=G3=example.com=alice@fwd.example", /* 5 characters */
	    "SRS0=J3X9=G3=example.com=alicf@fwd.example",  /* user changed */
	    "SRS0=J3X9=G3=example.org=alice@fwd.example",  /* host changed */
	    "SRS0=J3X9=GZ=example.com=alice@fwd.example",  /* timestamp changed */
	    "SRS1=x5nw=fwd1.example==abcd=TT=orig.example=eve@fwd.example",
	    "SRS1=x5nw=fwd9.example==abcd=TT=orig.example=bob@fwd.example",
	};

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		cr_expect_eq(rev(&s, forged[i], T0, out), SRS_BAD_HASH, "%s", forged[i]);
		cr_expect_str_eq(out, "");
	}
	/* every single-character change of the hash, in either case */
	strcpy(a, "SRS0=J3X9=G3=example.com=alice@fwd.example");
	for (size_t pos = 5; pos < 9; pos++) {
		char orig = a[pos];

		for (const char *c = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"; *c != '\0'; c++) {
			if (*c == orig || (*c ^ 0x20) == orig)
				continue;
			a[pos] = *c;
			cr_expect_eq(rev(&s, a, T0, out), SRS_BAD_HASH, "%s", a);
		}
		a[pos] = orig;
	}
	srs_fini(&s);
}

Test(srs, timestamps_expire_after_max_age_across_the_wrap)
{
	static const int64_t signed_on[] = {T0, DAY * 1023, DAY * 1024 * 20 - 1,
					    DAY * 1024 - 2 * DAY};
	struct srs s;
	char a[SRS_ADDR_BUF], out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(signed_on) / sizeof(signed_on[0]); i++) {
		int64_t t = signed_on[i];

		cr_assert_gt(fwd(&s, "alice@example.com", t, a), 0);
		for (int age = 0; age <= 3; age++)
			cr_expect_eq(rev(&s, a, t + age * DAY, out), SRS_OK, "%s age %d", a, age);
		cr_expect_eq(rev(&s, a, t + 4 * DAY, out), SRS_EXPIRED, "%s age 4", a);
		cr_expect_eq(rev(&s, a, t - DAY, out), SRS_EXPIRED, "%s from tomorrow", a);
		cr_expect_eq(rev(&s, a, t + 1024 * DAY, out), SRS_OK, "%s: the 1024-day wrap", a);
	}
	/* max_age 1 and SRS_MAX_MAX_AGE */
	s.max_age = 1;
	cr_assert_gt(fwd(&s, "alice@example.com", T0, a), 0);
	cr_expect_eq(rev(&s, a, T0 + DAY, out), SRS_OK);
	cr_expect_eq(rev(&s, a, T0 + 2 * DAY, out), SRS_EXPIRED);
	s.max_age = SRS_MAX_MAX_AGE;
	cr_expect_eq(rev(&s, a, T0 + SRS_MAX_MAX_AGE * (int64_t)DAY, out), SRS_OK);
	cr_expect_eq(rev(&s, a, T0 + (SRS_MAX_MAX_AGE + 1) * (int64_t)DAY, out), SRS_EXPIRED);
	srs_fini(&s);
}

Test(srs, hash_tag_and_timestamp_compare_case_insensitively)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"srs0=j3x9=g3=example.com=alice@fwd.example", "alice@example.com"},
	    {"SRS0=J3X9=G3=EXAMPLE.COM=ALICE@FWD.EXAMPLE", "ALICE@EXAMPLE.COM"},
	    {"sRs0=j3X9=g3=Example.com=Alice@Fwd.Example", "Alice@Example.com"},
	    {"srs1=X5NW=FWD1.EXAMPLE==ABCD=TT=ORIG.EXAMPLE=BOB@FWD.EXAMPLE",
	     "SRS0=ABCD=TT=ORIG.EXAMPLE=BOB@FWD1.EXAMPLE"},
	};
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(rev(&s, cases[i].in, T0, out), SRS_OK, "%s", cases[i].in);
		cr_expect_str_eq(out, cases[i].out);
	}
	srs_fini(&s);
}

/* ---- malformed and foreign input ---- */

Test(srs, not_ours_is_routed_normally)
{
	static const char *const not_srs[] = {
	    "",
	    "alice",
	    "alice@example.com",
	    "postmaster@fwd.example",
	    "SRS0=J3X9=G3=example.com=alice@other.example",
	    "SRS0=J3X9=G3=example.com=alice@fwd.example.evil",
	    "SRS0=J3X9=G3=example.com=alice@sub.fwd.example",
	    "SRS0=J3X9=G3=example.com=alice@fwd.example.",
	    "SRS2=J3X9=G3=example.com=alice@fwd.example",
	    "SRS0@fwd.example",
	    "SRS0x=J3X9=G3=example.com=alice@fwd.example",
	    "SRS0*J3X9=G3=example.com=alice@fwd.example",
	    "\"SRS0=J3X9=G3=example.com=alice\"@fwd.example",
	    "xSRS0=J3X9=G3=example.com=alice@fwd.example",
	};
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(not_srs) / sizeof(not_srs[0]); i++)
		cr_expect_eq(rev(&s, not_srs[i], T0, out), SRS_NOT_SRS, "'%s'", not_srs[i]);
	srs_fini(&s);
}

Test(srs, malformed_srs_addresses)
{
	static const char *const bad[] = {
	    "SRS0=@fwd.example",
	    "SRS0=J3X9@fwd.example",
	    "SRS0=J3X9=G3@fwd.example",
	    "SRS0=J3X9=G3=example.com@fwd.example",
	    "SRS0=J3X9=G3=example.com=@fwd.example",
	    "SRS0=J3X9=G3==alice@fwd.example",
	    "SRS0==G3=example.com=alice@fwd.example",
	    "SRS0=J3X9==example.com=alice@fwd.example",
	    "SRS0=J3X9=G=example.com=alice@fwd.example",
	    "SRS0=J3X9=G3A=example.com=alice@fwd.example",
	    "SRS0=J3X9=G1=example.com=alice@fwd.example",
	    "SRS0=J3X9=G@=example.com=alice@fwd.example",
	    "SRS0=J3X9=G3=[192.0.2.1]=alice@fwd.example",
	    "SRS0=J3X9=G3=exa_mple.com=alice@fwd.example",
	    "SRS0=J3X9=G3=example.com=al ice@fwd.example",
	    "SRS0=J3X9=G3=example.com=al\"ice@fwd.example",
	    "SRS0=J3X9=G3=example.com=al\\ice@fwd.example",
	    "SRS1=x5nw@fwd.example",
	    "SRS1=x5nw=fwd1.example@fwd.example",
	    "SRS1=x5nw=fwd1.example=@fwd.example",
	    "SRS1==fwd1.example==abcd@fwd.example",
	    "SRS1=x5nw==abcd@fwd.example",
	};
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(rev(&s, bad[i], T0, out), SRS_MALFORMED, "%s", bad[i]);
		cr_expect_str_eq(out, "");
	}
	/* a NUL byte inside: the length says where the address ends */
	static const char nul[] = "SRS0=J3X9=G3=example.com=al\0ce@fwd.example";

	cr_expect_eq(srs_reverse(&s, nul, sizeof(nul) - 1, T0, out, sizeof(out)), SRS_MALFORMED);
	srs_fini(&s);
}

Test(srs, forward_refuses_what_cannot_be_wrapped)
{
	static const char *const bad[] = {
	    "alice",
	    "@example.com",
	    "alice@",
	    "\"alice smith\"@example.com",
	    "alice@[192.0.2.1]",
	    "alice@[IPv6:2001:db8::1]",
	    "alice@exa=mple.com",
	    "alice@exa_mple.com",
	    "al\x01ice@example.com",
	    "al ice@example.com",
	};
	struct srs s;
	char out[SRS_ADDR_BUF];

	setup_rotation(&s);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(fwd(&s, bad[i], T0, out), -SLUICE_ESYNTAX, "%s", bad[i]);
		cr_expect_str_eq(out, "");
	}
	srs_fini(&s);
}

/* ---- length limits ---- */

/* A sender whose SRS0 form is exactly n octets: 37 of them are the frame. */
static void
sender_for_length(char *buf, size_t n)
{
	size_t local = n - strlen("SRS0=HHHH=TT=example.com=@" DOMAIN);

	memset(buf, 'x', local);
	strcpy(buf + local, "@example.com");
}

Test(srs, result_length_at_the_rfc_5321_path_limit)
{
	struct srs s;
	char sender[SRS_ADDR_BUF + 8], out[SRS_ADDR_BUF + 8], back[SRS_ADDR_BUF];
	ssize_t n;

	setup_rotation(&s);
	for (size_t len = SRS_MAX_ADDRESS - 1; len <= SRS_MAX_ADDRESS; len++) {
		sender_for_length(sender, len);
		n = srs_forward(&s, sender, strlen(sender), T0, out, sizeof(out));
		cr_expect_eq(n, (ssize_t)len, "N-1, N: %zd", n);
		cr_expect_eq(srs_reverse(&s, out, (size_t)n, T0, back, (size_t)n + 1), SRS_OK);
		cr_expect_str_eq(back, sender);
	}
	sender_for_length(sender, SRS_MAX_ADDRESS + 1);
	cr_expect_eq(srs_forward(&s, sender, strlen(sender), T0, out, sizeof(out)), -SLUICE_ELIMIT,
		     "N+1");
	cr_expect_str_eq(out, "");

	/* the same bound for what we reverse: N + 1 octets are malformed */
	memcpy(out, "SRS0=J3X9=G3=example.com=", 25);
	memset(out + 25, 'x', SRS_MAX_ADDRESS + 1 - 25 - 12);
	memcpy(out + SRS_MAX_ADDRESS + 1 - 12, "@" DOMAIN, 13);
	cr_expect_eq(srs_reverse(&s, out, strlen(out), T0, back, sizeof(back)), SRS_MALFORMED,
		     "%zu octets", strlen(out));
	srs_fini(&s);
}

Test(srs, forward_reports_a_short_buffer)
{
	struct srs s;
	char out[64];
	const char *want = "SRS0=J3X9=G3=example.com=alice@fwd.example";
	size_t n = strlen(want);

	setup_rotation(&s);
	cr_expect_eq(srs_forward(&s, "alice@example.com", 17, T0, out, n), -ENOSPC);
	cr_expect_str_eq(out, "");
	cr_expect_eq(srs_forward(&s, "alice@example.com", 17, T0, out, n + 1), (ssize_t)n);
	cr_expect_str_eq(out, want);
	srs_fini(&s);
}

Test(srs, status_texts_start_with_one_word)
{
	cr_expect_str_eq(srs_status_text(SRS_OK), "ok");
	cr_expect(strncmp(srs_status_text(SRS_NOT_SRS), "not ours", 8) == 0);
	cr_expect(strncmp(srs_status_text(SRS_BAD_HASH), "forged", 6) == 0);
	cr_expect(strncmp(srs_status_text(SRS_EXPIRED), "expired", 7) == 0);
	cr_expect(strncmp(srs_status_text(SRS_MALFORMED), "malformed", 9) == 0);
}
