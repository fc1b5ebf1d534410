#!/usr/bin/env bash
# t_srs_interop: sluice's SRS (auth/srs, through `sluice --srs-forward/--srs-reverse`)
# against the two independent implementations in Debian 12: Mail::SRS
# (libmail-srs-perl, called with perl) and postsrsd 1.10 (its Postfix tcp_table
# daemon, started on two free loopback ports and stopped by pid).
# Pass, with the same secrets file and domain on every side, at the current time:
#   - all three rewrite the same senders to the same bytes (SRS0, SRS1 of another
#     forwarder's SRS0 or SRS1, our own domain unchanged);
#   - Mail::SRS and postsrsd reverse our SRS0/SRS1 addresses to the original sender
#     (for SRS1: the first forwarder's SRS0 address), and we reverse theirs;
#   - rotation: an address Mail::SRS signed with the second (old) secret is accepted;
#     without that secret it is forged;
#   - time (Mail::SRS with a faked clock): 2 days old is valid, 4 days old and
#     "tomorrow" are expired (srs-max-age 3), as Mail::SRS says too;
#   - a changed hash character is forged for us and for Mail::SRS; a lowercased
#     address still reverses on both sides; the null sender stays null;
#   - --check-config refuses a bad secrets file with FILE:LINE and srs-domain without
#     srs-secret, and -v shows the srs-* keys.
# Skips (77) when perl's Mail::SRS or postsrsd is missing (tools/install-deps.sh
# installs both).
# e2e-timeout: 120
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice
e2e_need_cmds perl python3 timeout
perl -MMail::SRS -e 1 2>/dev/null || e2e_skip "perl Mail::SRS not installed (libmail-srs-perl)"
# /usr/sbin need not be on a CI user's PATH
POSTSRSD=$(command -v postsrsd || echo /usr/sbin/postsrsd)
[ -x "$POSTSRSD" ] || e2e_skip "postsrsd not installed"

DOMAIN=fwd.example
DAY=86400
# postsrsd reads every line as a secret: no comments in this file
printf '%s\n' sluice-e2e-secret-new-0123456789 sluice-e2e-secret-old-9876543210 >secrets
printf '%s\n' sluice-e2e-secret-new-0123456789 >secrets-new-only
printf '%s\n' sluice-e2e-secret-old-9876543210 >secrets-old-only

# sl [SECRETS] --srs-forward|--srs-reverse ADDRESS: sluice's answer; status as sluice's.
sl()
{
	local sec=secrets
	case $1 in --*) ;; *) sec=$1 && shift ;; esac
	timeout 10 "$E2E_BUILD/sluice" --srs-domain "$DOMAIN" --srs-secret "$sec" "$@"
}

# msrs forward|reverse ADDRESS...: Mail::SRS (Guarded, MaxAge 3) with the secrets in
# $SECRETS (default: secrets) at time $T (default: now); one line per address, the
# result or "ERROR: reason".
msrs()
{
	e2e_msrs "$DOMAIN" "$@"
}

# psrs PORT ADDRESS...: ask postsrsd's tcp_table on 127.0.0.1:PORT ("get ADDRESS",
# one connection); one line per address: the address of a "200" reply, else "ERROR: reply".
psrs()
{
	timeout 20 python3 - "$@" <<'PY'
import socket, sys
port, addrs = int(sys.argv[1]), sys.argv[2:]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rwb")
for a in addrs:
    f.write(b"get " + a.encode() + b"\n")
    f.flush()
    r = f.readline().decode().rstrip("\r\n")
    print(r[4:] if r.startswith("200 ") else "ERROR: " + r)
s.close()
PY
}

# sender | where a bounce to its SRS form goes ("-": not rewritten, no bounce path)
cases=(
	"alice@example.com|alice@example.com"
	"Alice.Smith@Example.COM|Alice.Smith@Example.COM"
	"user=name+tag@sub.example.org|user=name+tag@sub.example.org"
	"SRS0=abcd=TT=orig.example=bob@fwd1.example|SRS0=abcd=TT=orig.example=bob@fwd1.example"
	"SRS0+abcd=TT=orig.example=bob@fwd1.example|SRS0+abcd=TT=orig.example=bob@fwd1.example"
	"SRS1=ZZZZ=fwd1.example==abcd=TT=orig.example=bob@fwd2.example|SRS0=abcd=TT=orig.example=bob@fwd1.example"
	"carol@fwd.example|-"
)
senders=()
bounce_to=()
for c in "${cases[@]}"; do
	senders+=("${c%%|*}")
	bounce_to+=("${c#*|}")
done

# --- postsrsd on two free ports, our secrets, 5 s idle limit per connection ----------
FPORT=$(e2e_port 0)
RPORT=$(e2e_port 1)
e2e_start postsrsd "$POSTSRSD" -s secrets -d "$DOMAIN" -l 127.0.0.1 -f "$FPORT" -r "$RPORT" -t 5
PSRS_PID=$E2E_LAST_PID
e2e_wait_port 127.0.0.1 "$RPORT" 10 "$PSRS_PID" ||
	e2e_fail "postsrsd did not listen on 127.0.0.1:$FPORT/$RPORT: $(tail -3 postsrsd.err)"

# --- 1. forward: the same bytes from all three (redone once across midnight UTC) -------
for _ in 1 2; do
	day=$(($(date +%s) / DAY))
	ours=()
	for s in "${senders[@]}"; do
		ours+=("$(sl --srs-forward "$s" 2>&1)")
	done
	mapfile -t theirs < <(msrs forward "${senders[@]}")
	mapfile -t post < <(psrs "$FPORT" "${senders[@]}")
	[ "$day" = $(($(date +%s) / DAY)) ] && break
done
for i in "${!senders[@]}"; do
	s=${senders[$i]}
	echo "forward $s: sluice ${ours[$i]} | Mail::SRS ${theirs[$i]-?} | postsrsd ${post[$i]-?}" >&2
	[ "${ours[$i]}" = "${theirs[$i]-}" ] ||
		e2e_case_fail forward-mail-srs "$s: sluice '${ours[$i]}', Mail::SRS '${theirs[$i]-}'"
	[ "${ours[$i]}" = "${post[$i]-}" ] ||
		e2e_case_fail forward-postsrsd "$s: sluice '${ours[$i]}', postsrsd '${post[$i]-}'"
done

# --- 2. they reverse ours, we reverse theirs ---------------------------------------------
srs_ours=()
srs_theirs=()
srs_post=()
want=()
for i in "${!senders[@]}"; do
	[ "${bounce_to[$i]}" != - ] || continue
	srs_ours+=("${ours[$i]}")
	srs_theirs+=("${theirs[$i]-}")
	srs_post+=("${post[$i]-}")
	want+=("${bounce_to[$i]}")
done
mapfile -t back_msrs < <(msrs reverse "${srs_ours[@]}")
mapfile -t back_post < <(psrs "$RPORT" "${srs_ours[@]}")
for i in "${!want[@]}"; do
	a=${srs_ours[$i]}
	echo "reverse $a: Mail::SRS ${back_msrs[$i]-?} | postsrsd ${back_post[$i]-?}" >&2
	[ "${back_msrs[$i]-}" = "${want[$i]}" ] ||
		e2e_case_fail mail-srs-reverses-ours "$a: got '${back_msrs[$i]-}', want '${want[$i]}'"
	[ "${back_post[$i]-}" = "${want[$i]}" ] ||
		e2e_case_fail postsrsd-reverses-ours "$a: got '${back_post[$i]-}', want '${want[$i]}'"
	for pair in "mail-srs|${srs_theirs[$i]}" "postsrsd|${srs_post[$i]}"; do
		got=$(sl --srs-reverse "${pair#*|}" 2>&1)
		[ "$got" = "${want[$i]}" ] ||
			e2e_case_fail "we-reverse-${pair%%|*}" "${pair#*|}: got '$got', want '${want[$i]}'"
	done
done

e2e_stop "$PSRS_PID" 5
[ "$E2E_LAST_RC" != 137 ] || e2e_case_fail postsrsd-stop "postsrsd ignored SIGTERM"

# --- 3. rotation: Mail::SRS signs with the old secret alone ------------------------------
old=$(SECRETS=secrets-old-only msrs forward alice@example.com)
got=$(sl --srs-reverse "$old" 2>&1)
[ "$got" = alice@example.com ] || e2e_case_fail rotation "old secret: $old -> '$got'"
got=$(sl secrets-new-only --srs-reverse "$old" 2>&1)
case $got in *forged*) ;; *) e2e_case_fail rotation "retired secret: $old -> '$got'" ;; esac
new=$(sl secrets-new-only --srs-forward alice@example.com 2>&1)
[ "$new" = "${ours[0]}" ] || e2e_case_fail rotation "the first secret signs: '$new' vs '${ours[0]}'"

# --- 4. time: Mail::SRS with a faked clock --------------------------------------------------
now=$(date +%s)
for age in 2 4 -1; do
	a=$(T=$((now - age * DAY)) msrs forward alice@example.com)
	got=$(sl --srs-reverse "$a" 2>&1)
	them=$(msrs reverse "$a")
	echo "age $age days: $a: sluice '$got', Mail::SRS '$them'" >&2
	if [ "$age" = 2 ]; then
		[ "$got" = alice@example.com ] && [ "$them" = alice@example.com ] ||
			e2e_case_fail time "$age days old: sluice '$got', Mail::SRS '$them'"
	else
		case "$got|$them" in
		*expired*"|ERROR:"*timestamp*) ;;
		*) e2e_case_fail time "$age days old: sluice '$got', Mail::SRS '$them'" ;;
		esac
	fi
done

# --- 5. forged, case-folded, null --------------------------------------------------------
a=${srs_theirs[0]} # Mail::SRS: SRS0 for alice@example.com
h=${a:5:1}
[ "$h" = A ] && f=B || f=A
forged="${a:0:5}$f${a:6}"
got=$(sl --srs-reverse "$forged" 2>&1)
them=$(msrs reverse "$forged")
case "$got|$them" in
*forged*"|ERROR:"*hash*) ;;
*) e2e_case_fail forged "$forged: sluice '$got', Mail::SRS '$them'" ;;
esac
lower=${a,,}
got=$(sl --srs-reverse "$lower" 2>&1)
[ "$got" = alice@example.com ] || e2e_case_fail case "$lower: '$got'"
them=$(msrs reverse "${ours[0],,}")
[ "$them" = alice@example.com ] || e2e_case_fail case "Mail::SRS on ${ours[0],,}: '$them'"
got=$(sl --srs-forward '' 2>&1)
rc=$?
[ $rc = 0 ] && [ -z "$got" ] || e2e_case_fail null "--srs-forward '': rc $rc, '$got'"

# --- 6. configuration --------------------------------------------------------------------
printf '# secrets\n\nsluice-e2e-secret-new-0123456789\n too-short \n' >bad-secrets
why=$(e2e_config_refused bad-secrets 4 --srs-domain "$DOMAIN" --srs-secret)
[ -z "$why" ] || e2e_case_fail config "$why"
printf 'srs-domain %s\nsrs-max-age 0\n' "$DOMAIN" >bad-age.conf
why=$(e2e_config_refused bad-age.conf 2 -c)
[ -z "$why" ] || e2e_case_fail config "$why"
out=$(timeout 10 "$E2E_BUILD/sluice" --check-config --srs-domain "$DOMAIN" 2>&1)
rc=$?
[ $rc = 1 ] && grep -q 'srs-domain: needs srs-secret' <<<"$out" ||
	e2e_case_fail config "srs-domain alone: rc $rc, '$out'"
out=$(timeout 10 "$E2E_BUILD/sluice" --check-config -v --srs-domain "$DOMAIN" \
	--srs-secret secrets --set srs-max-age=5 2>&1)
rc=$?
echo "--- check-config -v (rc $rc): $out" >&2
for l in "srs-domain $DOMAIN" "srs-secret secrets" "srs-max-age 5" "srs: $DOMAIN (2 secrets)"; do
	[ $rc = 0 ] && grep -q -- "$l" <<<"$out" || e2e_case_fail config "-v lacks '$l' (rc $rc)"
done

e2e_case_finish
exit 0
