/*
 * test_zone_json.c -- zone_decision_json(): the exact --lookup line for
 * each action, escaping, ports and literals, and safe truncation.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "route/zone.h"

static struct zone_decision *
decision(enum zone_action a, const char *zone, const char *rule, const char *reply)
{
	struct zone_decision *d = calloc(1, sizeof(*d));

	cr_assert_not_null(d);
	d->action = a;
	d->zone = zone;
	d->rule = rule;
	strcpy(d->reply, reply);
	return d;
}

static void
dest(struct zone_decision *d, unsigned g, const char *addr, uint16_t port)
{
	struct zone_dest *x = &d->groups[g].d[d->groups[g].n++];

	x->addr = addr;
	x->port = port;
	if (g + 1 > d->ngroups)
		d->ngroups = g + 1;
}

TestSuite(zone_json);

Test(zone_json, forward_lists_groups_with_ports_and_literals)
{
	struct zone_decision *d =
	    decision(ZONE_FORWARD, "example.com", "sales@example.com", "ignored");
	char buf[1024];
	size_t n;

	dest(d, 0, "first@dest.test", 0);
	dest(d, 0, "third@[192.0.2.7]", 0);
	dest(d, 1, "bob@dest2.test", 2525);
	n = zone_decision_json(d, buf, sizeof(buf));
	cr_expect_str_eq(
	    buf, "{\"zone\":\"example.com\",\"rule\":\"sales@example.com\","
		 "\"action\":\"forward\",\"reply\":null,\"destinations\":"
		 "[[\"first@dest.test\",\"third@[192.0.2.7]\"],[\"bob@dest2.test:2525\"]]}\n");
	cr_expect_eq(n, strlen(buf));
	free(d);
}

Test(zone_json, refuse_has_null_zone_and_rule_and_no_destinations)
{
	struct zone_decision *d = decision(ZONE_REFUSE, NULL, NULL, "550 5.7.1 Relaying denied");
	char buf[512];

	zone_decision_json(d, buf, sizeof(buf));
	cr_expect_str_eq(buf, "{\"zone\":null,\"rule\":null,\"action\":\"refuse\","
			      "\"reply\":\"550 5.7.1 Relaying denied\",\"destinations\":[]}\n");
	free(d);
}

Test(zone_json, strings_are_escaped_and_utf8_passes_through)
{
	struct zone_decision *d = decision(ZONE_DROP, "xn--bcher-kva.example",
					   "\"a\\\\b\"@b\xc3\xbc"
					   "cher.example",
					   "250 2.1.5 Ok\x01");
	char buf[512];

	zone_decision_json(d, buf, sizeof(buf));
	cr_expect_str_eq(buf, "{\"zone\":\"xn--bcher-kva.example\",\"rule\":"
			      "\"\\\"a\\\\\\\\b\\\"@b\xc3\xbc"
			      "cher.example\",\"action\":\"drop\","
			      "\"reply\":\"250 2.1.5 Ok\\u0001\",\"destinations\":[]}\n");
	free(d);
}

Test(zone_json, a_short_buffer_is_cut_at_a_character_boundary)
{
	struct zone_decision *d =
	    decision(ZONE_REJECT, "\xc3\xa9t\xc3\xa9.test", "x", "550 5.1.1 x");
	char full[512], buf[512];
	size_t n = zone_decision_json(d, full, sizeof(full));

	for (size_t cap = 1; cap <= n + 1; cap++) {
		size_t m = zone_decision_json(d, buf, cap);

		cr_assert_lt(m, cap);
		cr_assert_eq(strlen(buf), m);
		cr_assert_eq(memcmp(buf, full, m), 0, "cap %zu", cap);
		/* never half of a UTF-8 sequence or of an escape */
		cr_assert(m == 0 || (unsigned char)buf[m - 1] < 0xc0, "cap %zu", cap);
	}
	cr_expect_eq(zone_decision_json(d, buf, 0), 0);
	free(d);
}
