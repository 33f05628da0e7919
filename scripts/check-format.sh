#!/bin/sh
# Check that C files are formatted as .clang-format says (clang-format 14,
# Debian's). Exit 1 listing the offending lines, 0 when clean.
#
# Usage: scripts/check-format.sh [--fix] [BASE]
#   BASE   check the C files that differ between BASE and the working tree
#          (committed or not), e.g. `scripts/check-format.sh main`.
#   (none) check the C files changed on this branch: since the merge base
#          with origin/main or main; on main itself (CI's fresh clone), the
#          files changed by the last commit (for a merge: everything it
#          brought in); plus uncommitted changes.
#   --fix  rewrite those files in place instead of checking them.
# Either way, every file or directory listed in scripts/format-checked.txt
# is checked too: the team grows that list as parts of the tree are
# formatted, so they stay formatted whatever the last commit touched.
#
# Only *.c and *.h under src/ and tests/ are considered.
set -eu

cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
fix=
if [ "${1:-}" = --fix ]; then
	fix=1
	shift
fi
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
	echo "check-format: $CLANG_FORMAT not found (scripts/deps.sh test installs it)" >&2
	exit 2
fi
case "$("$CLANG_FORMAT" --version)" in
*" version 14."*) ;;
*) echo "check-format: .clang-format is tuned for clang-format 14;" \
	"$("$CLANG_FORMAT" --version) may disagree" >&2 ;;
esac

changed() {
	git diff --name-only --diff-filter=d "$@" -- 'src/*.[ch]' 'tests/*.[ch]'
}

list=$(mktemp)
trap 'rm -f "$list"' EXIT
if git rev-parse --git-dir >/dev/null 2>&1; then
	if [ $# -gt 0 ]; then
		if ! git rev-parse --verify -q "$1^{commit}" >/dev/null; then
			echo "check-format: unknown base '$1'" >&2
			exit 2
		fi
		changed "$1" >>"$list"
	else
		base=
		for ref in origin/main main; do
			if git rev-parse --verify -q "$ref^{commit}" >/dev/null; then
				base=$(git merge-base HEAD "$ref" 2>/dev/null) || base=
				break
			fi
		done
		if [ -z "$base" ] || [ "$base" = "$(git rev-parse HEAD)" ]; then
			# On main: the last commit. A shallow clone may not have
			# its parent; then only the list below is checked.
			base=$(git rev-parse --verify -q 'HEAD~1^{commit}') || base=
			[ -n "$base" ] || echo "check-format: HEAD has no parent here" \
				"(shallow clone?): checking the list and uncommitted changes" >&2
		fi
		[ -z "$base" ] || changed "$base" HEAD >>"$list"
		changed HEAD >>"$list"
	fi
fi
if [ -f scripts/format-checked.txt ]; then
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' scripts/format-checked.txt |
	while IFS= read -r p; do
		if [ -d "$p" ]; then
			find "$p" -type f \( -name '*.c' -o -name '*.h' \)
		elif [ -f "$p" ]; then
			echo "$p"
		else
			echo "check-format: scripts/format-checked.txt: no such file '$p'" >&2
			exit 2
		fi
	done >>"$list"
fi

files=$(LC_ALL=C sort -u "$list" | while IFS= read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done)
if [ -z "$files" ]; then
	echo "check-format: no C files to check"
	exit 0
fi
n=$(echo "$files" | wc -l)
# shellcheck disable=SC2086
if [ -n "$fix" ]; then
	"$CLANG_FORMAT" -i $files
	echo "check-format: formatted $n file(s)"
	exit 0
fi
# shellcheck disable=SC2086
if ! "$CLANG_FORMAT" --dry-run --Werror $files; then
	echo "check-format: the files above are not formatted;" \
		"\`scripts/check-format.sh --fix${1:+ $1}\` rewrites them" >&2
	exit 1
fi
echo "check-format: $n file(s) formatted"
