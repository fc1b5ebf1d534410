#!/usr/bin/env bash
# check-layers.sh -- forbid upward and private includes between modules.
#
#   tools/check-layers.sh [ROOT]      (ROOT defaults to the repository root)
#
# A grep over #include lines (STYLE.md "Layering rule"; Postfix enforces the
# same by link order, we make it a failing check):
#
#   level 0  core/{check,err,buf,arena,pool,timer,jlog}.[ch]   no I/O, no shard
#   level 1  proto/* auth/* route/*  (except proto/smtp_session.[ch])
#   level 2  core/{loop,shard,listen,bufring,mailbox,dns}.[ch]
#   level 3  proto/smtp_session.[ch], core/main.c (glue: anything goes)
#
# Rules:
#   1. Levels 0 and 1 include only level-0 core headers, never another core/
#      header (loop.h, shard.h, config.h, ...) and never <liburing.h>.
#   2. Level 0 includes no proto/, auth/ or route/ header; level 1 never
#      includes the level-3 proto/smtp_session.h.
#   3. Level 2 includes no proto/, auth/ or route/ header (core does not know SMTP).
#   4. <module>_int.h headers (module-private, STYLE.md) are included only by
#      files of that module: proto/x_int.h only from proto/.
#   5. Include paths are written from the repository root: no "..".
# Other core files (config, log, ...) are not classified yet and only get
# rules 4 and 5. Prints FILE:LINE: reason for each violation; exit 1 if any.

LEVEL0="check err buf arena pool timer jlog"
LEVEL2="loop shard listen bufring mailbox dns"

root=${1:-"$(dirname "$0")/.."}
cd "$root" || exit 2

violations=0
report() {
	echo "$1:$2: $3"
	violations=$((violations + 1))
}

in_list() { # WORD LIST
	case " $2 " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

level_of() { # FILE -> 0 1 2 3 or "" (unclassified)
	local f=$1 mod=${1%%/*} stem
	stem=${f##*/}
	stem=${stem%.*}
	case $f in
	proto/smtp_session.c | proto/smtp_session.h | core/main.c)
		echo 3
		return
		;;
	esac
	case $mod in
	proto | auth | route) echo 1 ;;
	core)
		if [ "${f%/*}" != core ]; then
			echo "" # core/compat/... : unclassified
		elif in_list "$stem" "$LEVEL0"; then
			echo 0
		elif in_list "$stem" "$LEVEL2"; then
			echo 2
		fi
		;;
	esac
}

files=$(find core proto auth route -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null |
	LC_ALL=C sort)
nfiles=0
for f in $files; do
	nfiles=$((nfiles + 1))
	mod=${f%%/*}
	level=$(level_of "$f")
	while IFS= read -r hit; do
		[ -n "$hit" ] || continue
		lineno=${hit%%:*}
		text=${hit#*:}
		inc=$(printf '%s\n' "$text" | sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^">]*\)[">].*/\1/p')
		[ -n "$inc" ] || continue
		case $text in
		*'<'*) angle=1 ;;
		*) angle=0 ;;
		esac
		imod=${inc%%/*}
		istem=${inc##*/}
		istem=${istem%.h}

		# 5. root-relative paths only
		case $inc in
		*..*) report "$f" "$lineno" "include paths are written from the repository root: $inc" ;;
		esac

		# 4. private headers stay in their module
		case $inc in
		*/*_int.h)
			if [ "$angle" = 0 ] && [ "$imod" != "$mod" ]; then
				report "$f" "$lineno" "$inc is private to $imod/ (only public headers cross modules)"
			fi
			;;
		esac

		case $level in
		0 | 1)
			# 1. only level-0 core headers, no liburing
			if [ "$angle" = 1 ] && [ "$inc" = liburing.h ]; then
				report "$f" "$lineno" "level $level must not include <liburing.h> (no I/O below level 2)"
			elif [ "$angle" = 0 ] && [ "$imod" = core ] && { [ "${inc%/*}" != core ] || ! in_list "$istem" "$LEVEL0"; }; then
				report "$f" "$lineno" "level $level may include only level-0 core headers ($LEVEL0), not $inc"
			fi
			# 2. no upward include into protocol modules / the session glue
			if [ "$angle" = 0 ]; then
				if [ "$level" = 0 ] && in_list "$imod" "proto auth route"; then
					report "$f" "$lineno" "level 0 must not include $inc"
				elif [ "$level" = 1 ] && [ "$inc" = proto/smtp_session.h ]; then
					report "$f" "$lineno" "level 1 must not include the session glue $inc"
				fi
			fi
			;;
		2)
			# 3. core I/O does not know SMTP
			if [ "$angle" = 0 ] && in_list "$imod" "proto auth route"; then
				report "$f" "$lineno" "level 2 (core I/O) must not include $inc"
			fi
			;;
		esac
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include' "$f")
done

if [ "$violations" -ne 0 ]; then
	echo "check-layers: $violations violation(s) in $nfiles files"
	exit 1
fi
echo "check-layers: $nfiles files ok"
exit 0
