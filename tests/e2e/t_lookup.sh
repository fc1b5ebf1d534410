#!/usr/bin/env bash
# t_lookup: `sluice --zones FILE --lookup ADDRESS` decides like RCPT would (issue 4).
# Pass: for every row of lookup/cases.tsv, --lookup on lookup/zones.txt exits 0 and
# prints one JSON object equal (as parsed JSON, see cases.tsv's header for the "*"
# wildcards and alternatives) to the expected one; `--check-config --zones` accepts
# zones.txt (exit 0) and refuses each broken file (exit 1, "FILE:LINE: reason" naming
# the right line); --lookup on a broken or missing zone file fails without printing a
# decision. Skips (77) while `sluice --help` does not mention --lookup.
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
LOOKUP_DIR=$(cd "$(dirname "$0")/lookup" && pwd)
e2e_init "$@"
e2e_need_bins sluice
e2e_need_cmds python3 timeout

# The --zones/--lookup options come with issue 4's core/main.c change; until then there
# is nothing to test. Explicit, so a skip says why.
help=$(timeout 10 "$E2E_BUILD/sluice" --help 2>&1)
if ! grep -q -- '--lookup' <<<"$help"; then
	e2e_skip "sluice --help does not mention --lookup (the --zones/--lookup CLI is not built in yet)"
fi

fails=()

# --- 1. the decision table --------------------------------------------------------------
if ! python3 - "$E2E_BUILD/sluice" "$LOOKUP_DIR/zones.txt" "$LOOKUP_DIR/cases.tsv" \
	>lookup.out 2>&1 <<'PY'; then
import json, subprocess, sys

sluice, zones, cases = sys.argv[1:4]

def match(exp, got):
    """exp matches got: "*" anything, "prefix*" by prefix, dicts/lists element-wise."""
    if exp == "*":
        return True
    if isinstance(exp, str) and exp.endswith("*"):
        return isinstance(got, str) and got.startswith(exp[:-1])
    if isinstance(exp, dict):
        return (isinstance(got, dict) and set(exp) == set(got)
                and all(match(exp[k], got[k]) for k in exp))
    if isinstance(exp, list):
        return (isinstance(got, list) and len(exp) == len(got)
                and all(match(e, g) for e, g in zip(exp, got)))
    return exp == got and type(exp) == type(got)

bad = 0
rows = 0
with open(cases, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        addr, _, want = line.partition("\t")
        rows += 1
        where = "cases.tsv:%d %s" % (lineno, addr)
        try:
            exp = json.loads(want)
        except ValueError as e:
            print("%s: bad expected JSON: %s" % (where, e))
            bad += 1
            continue
        alts = exp if isinstance(exp, list) else [exp]
        try:
            p = subprocess.run([sluice, "--zones", zones, "--lookup", addr],
                               capture_output=True, timeout=10)
        except subprocess.TimeoutExpired:
            print("%s: sluice --lookup did not exit within 10 s" % where)
            bad += 1
            continue
        out = p.stdout.decode("utf-8", "replace").strip()
        if p.returncode != 0:
            print("%s: exit %d, want 0 (stderr: %s)"
                  % (where, p.returncode, p.stderr.decode("utf-8", "replace").strip()[:200]))
            bad += 1
            continue
        try:
            got = json.loads(out)
        except ValueError as e:
            print("%s: output is not one JSON object (%s): %r" % (where, e, out[:200]))
            bad += 1
            continue
        if not any(match(a, got) for a in alts):
            print("%s:\n    got  %s\n    want %s" % (where, json.dumps(got, ensure_ascii=False),
                  " or ".join(json.dumps(a, ensure_ascii=False) for a in alts)))
            bad += 1
print("lookup: %d rows, %d wrong" % (rows, bad))
sys.exit(1 if bad or rows < 40 else 0)
PY
	cat lookup.out >&2
	fails+=("$(tail -1 lookup.out); first: $(head -1 lookup.out)")
else
	cat lookup.out >&2
fi

# --- 2. --check-config --zones ----------------------------------------------------------
out=$(timeout 10 "$E2E_BUILD/sluice" --check-config --zones "$LOOKUP_DIR/zones.txt" 2>&1)
rc=$?
echo "--- zones.txt (rc $rc): $out" >&2
[ $rc -eq 0 ] || fails+=("--check-config --zones zones.txt: exit $rc, want 0 (output: ${out:0:160})")

many_groups=$(for i in $(seq 1 17); do printf ' g%d@dest.test' "$i"; done)
many_fallbacks=$(seq 1 9 | sed 's/.*/f&@dest.test/' | paste -sd'|')
# name ; file body (printf %b) ; line the error must name
cases=(
	"undeclared-zone;zone a.test\nx@a.test forward y@dest.test\nx@b.test forward y@dest.test\n;3"
	"unknown-action;zone a.test\n\n# comment\nx@a.test explode\n;4"
	"no-action;zone a.test\nx@a.test\n;2"
	"reject-4xx;zone a.test\nx@a.test reject 451 4.2.1 not a rejection\n;2"
	"defer-5xx;zone a.test\nx@a.test defer 550 5.1.1 not a deferral\n;2"
	"reject-no-code;zone a.test\nx@a.test reject go away\n;2"
	"forward-nothing;zone a.test\nx@a.test forward\n;2"
	"bad-option-value;verified-domain dest.test\nzone a.test subdomains=maybe\n;2"
	"unknown-option;zone a.test colour=blue\n;1"
	"bad-local-case;zone a.test local-case=upper\n;1"
	"bad-tag;zone a.test tag=drop\n;1"
	"zone-no-name;zone\n;1"
	"bad-destination;zone a.test\nx@a.test forward not-an-address\n;2"
	"bad-port;zone a.test\nx@a.test forward y@dest.test:99999\n;2"
	"bad-ipv4-literal;zone a.test\nx@a.test forward y@[300.1.2.3]\n;2"
	"bad-ipv6-literal;zone a.test\nx@a.test forward y@[IPv6:2001:db8::zz]\n;2"
	"empty-fallback;zone a.test\nx@a.test forward y@dest.test||z@dest.test\n;2"
	"too-many-destinations;zone a.test\n\nx@a.test forward$many_groups\n;3"
	"too-many-fallbacks;zone a.test\nx@a.test forward $many_fallbacks\n;2"
	"unknown-keyword;verified-domain dest.test\nfrobnicate x\n;2"
	"bad-verified;zone a.test\nverified nodomain\n;2"
	"bad-rule-address;zone a.test\nx@@a.test drop\n;2"
)
for c in "${cases[@]}"; do
	IFS=';' read -r name body line <<<"$c"
	f=bad-$name.txt
	f=${f/bad-bad-/bad-}
	printf '%b' "$body" >"$f"
	why=$(e2e_config_refused "$f" "$line" --zones)
	[ -z "$why" ] || fails+=("$why")
done

# A broken file is refused whole, also for --lookup; so is a missing one.
out=$(timeout 10 "$E2E_BUILD/sluice" --zones bad-unknown-action.txt --lookup x@a.test 2>/dev/null)
rc=$?
echo "--- --lookup on bad-unknown-action.txt (rc $rc): $out" >&2
[ $rc -ne 0 ] && [ -z "$out" ] ||
	fails+=("--lookup on a broken zone file: exit $rc, stdout '${out:0:80}' (want failure, no decision)")
out=$(timeout 10 "$E2E_BUILD/sluice" --zones no-such-file.txt --lookup x@a.test 2>&1)
rc=$?
echo "--- --lookup on no-such-file.txt (rc $rc): $out" >&2
[ $rc -ne 0 ] && grep -q 'no-such-file.txt' <<<"$out" ||
	fails+=("--lookup on a missing zone file: exit $rc, want failure naming the file (${out:0:80})")

if [ ${#fails[@]} -gt 0 ]; then
	printf '%s\n' "${fails[@]}" >&2
	e2e_fail "${#fails[@]} lookup check(s) wrong; first: ${fails[0]}"
fi
exit 0
