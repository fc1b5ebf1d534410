#!/usr/bin/env bash
# t_check_config: `sluice --check-config -c FILE` validates a config without serving.
# Pass: every bad file exits 1 and prints "FILE:LINE: reason" naming the right line
# (at the start of a line; a "sluice: " program-name prefix is tolerated);
# the good file exits 0. Each run is bounded (10 s): --check-config must not serve.
# e2e-timeout: 60
. "$(dirname "$0")/lib.sh"
e2e_init "$@"
e2e_need_bins sluice

cat >good.conf <<'CONF'
# a complete, valid configuration
listen 127.0.0.1:2525
listen [::1]:2525
shards 2
hostname mx.e2e.test
upstream 127.0.0.1:2526
max-message-size 25M
max-recipients 100
max-line-length 1024
command-timeout 30s
data-timeout 5m
upstream-timeout 500ms
shutdown-timeout 10s
send-mode copy
log-level info
CONF

# name | file body | line the error must name
cases=(
	"unknown-key|shards 2\n# comment\nno-such-key 1\n|3"
	"bad-number|listen 127.0.0.1:2525\nshards two\n|2"
	"bad-listen-noport|\nhostname a.test\n\nlisten 127.0.0.1\n|4"
	"bad-listen-port|listen 127.0.0.1:99999\n|1"
	"bad-size|max-message-size 10Q\n|1"
	"bad-duration|shards 1\ncommand-timeout 5 fortnights\n|2"
	"bad-line-length|max-line-length 4096\n|1"
	"bad-send-mode|send-mode teleport\n|1"
	"missing-value|shards\n|1"
)

fails=()
for c in "${cases[@]}"; do
	IFS='|' read -r name body line <<<"$c"
	f=bad-$name.conf
	f=${f/bad-bad-/bad-}
	printf "$body" >"$f"
	why=$(e2e_config_refused "$f" "$line" -c)
	[ -z "$why" ] || fails+=("$why")
done

out=$(timeout 10 "$E2E_BUILD/sluice" --check-config -c good.conf 2>&1)
rc=$?
echo "--- good.conf (rc $rc): $out" >&2
[ $rc -eq 0 ] || fails+=("good.conf: exit $rc, want 0 (output: ${out:0:160})")

if [ ${#fails[@]} -gt 0 ]; then
	printf '%s\n' "${fails[@]}" >&2
	e2e_fail "${#fails[@]} config case(s) wrong; first: ${fails[0]}"
fi
exit 0
