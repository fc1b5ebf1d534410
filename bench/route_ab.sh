#!/usr/bin/env bash
# route_ab.sh -- paired A/B of two revisions of route/ in one process (bench/route_ab.c
# says how and why: on this kind of machine separate runs differ by more than most
# changes to the lookup are worth).
#
#   bench/route_ab.sh [--one-table] [--rounds N] [--lookups N] REV_A REV_B [ZONEFILE SAMPLES]
#
# REV is a git revision, "." for the working tree, or another source tree (a
# directory: a scratch copy with an experiment). Each side's libroute.a is built
# in its own worktree (release build) and its symbols renamed A_... / B_..., so one
# binary holds both. ZONEFILE and SAMPLES default to the 1M-zone table `make bench`
# generates (build/bench/zones-1000000z-*.txt and its .samples).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
opts=()
while [ $# -gt 0 ]; do
	case $1 in
	--one-table) opts+=("$1"); shift ;;
	--rounds | --lookups) opts+=("$1" "$2"); shift 2 ;;
	-*) echo "usage: $0 [--one-table] [--rounds N] [--lookups N] REV_A REV_B [ZONEFILE SAMPLES]" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || [ $# -eq 4 ] || { echo "route_ab: give REV_A REV_B [ZONEFILE SAMPLES]" >&2; exit 2; }
zones=${3:-$(ls "$ROOT"/build/bench/zones-1000000z-*r-s1-*.txt 2>/dev/null | head -1)}
samples=${4:-$zones.samples}
[ -s "$zones" ] && [ -s "$samples" ] || {
	echo "route_ab: no zone file (run make bench once, or give ZONEFILE SAMPLES)" >&2
	exit 2
}

work=$(mktemp -d /tmp/sluice-route-ab.XXXXXX)
trees=()
cleanup() {
	for t in "${trees[@]}"; do git -C "$ROOT" worktree remove --force "$t" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# side NAME REV: $work/NAME.a, REV's libroute.a with every defined global renamed NAME_...
side() {
	local name=$1 rev=$2 tree=$ROOT
	if [ "$rev" != . ] && [ -d "$rev" ]; then
		tree=$(cd "$rev" && pwd)
	elif [ "$rev" != . ]; then
		tree=$work/tree-$name
		git -C "$ROOT" worktree add --quiet --detach "$tree" "$rev"
		trees+=("$tree")
	fi
	make -s -C "$tree" BUILD=release build/libroute.a >/dev/null
	mkdir "$work/$name" && (cd "$work/$name" && ar x "$tree/build/libroute.a")
	nm --defined-only -g "$work/$name"/*.o | awk -v p="${name}_" 'NF == 3 { print $3, p $3 }' |
		sort -u >"$work/$name.syms"
	for o in "$work/$name"/*.o; do objcopy --redefine-syms="$work/$name.syms" "$o"; done
	ar rcs "$work/$name.a" "$work/$name"/*.o
}
side A "$1"
side B "$2"
make -s -C "$ROOT" BUILD=release build/libcore.a >/dev/null
gcc -O2 -g -std=gnu11 -I"$ROOT" -o "$work/route_ab" "$ROOT/bench/route_ab.c" "$ROOT/bench/bench_samples.c" \
	"$work/A.a" "$work/B.a" "$ROOT/build/libcore.a" -ljemalloc -lck -lxxhash -lidn2 -lpthread
echo "route_ab: A = $1, B = $2, $(basename "$zones")"
"$work/route_ab" "$zones" "$samples" "${opts[@]}"
