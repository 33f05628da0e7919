#!/bin/sh
# Fail (exit 1, listing file:line) when a banned function is called in the
# C sources. Banned: unbounded or shell-invoking libc calls that have a safer
# house replacement (snprintf, strtok_r, strtol, spawn_run, ...).
#
# Usage: scripts/check-banned.sh [DIR_OR_FILE ...]   (default: the repo's src/)
#
# A call is the name as a whole word followed by optional blanks and '(':
# snprintf, vsnprintf, strtok_r, fgets, execvpe do not match. Comments and
# string/char literals are blanked first (line numbers kept), so prose such
# as "never use system()" in a comment is not a hit.
set -eu

if [ $# -eq 0 ]; then
	cd "$(dirname "$0")/.."
	set -- src
fi

files=$(find "$@" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ -n "$files" ] || exit 0

# shellcheck disable=SC2086
exec perl -e '
	my $banned = qr/\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|system|popen|execvp|gets)\s*\(/;
	my $bad = 0;
	for my $f (@ARGV) {
		open(my $fh, "<", $f) or die "$f: $!\n";
		local $/;
		my $src = <$fh>;
		close $fh;
		# Blank comments and literals, keeping newlines for line numbers.
		$src =~ s{
			(/\*.*?\*/) | (//[^\n]*) | ("(?:\\.|[^"\\\n])*") | (\x27(?:\\.|[^\x27\\\n])*\x27)
		}{ my $m = $&; $m =~ s/[^\n]/ /g; $m }gsex;
		my $n = 0;
		for my $line (split /\n/, $src, -1) {
			$n++;
			while ($line =~ /$banned/g) {
				print "$f:$n: banned function $1()\n";
				$bad = 1;
			}
		}
	}
	exit $bad;
' $files
