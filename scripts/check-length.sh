#!/bin/sh
# Fail (exit 1) listing every C function longer than 80 lines and every C
# source or header file longer than 600 lines (house style, STYLE.md).
#
# Usage: scripts/check-length.sh [DIR_OR_FILE ...]   (default: the repo's src/)
# Limits: MAX_FUNCTION_LINES (default 80), MAX_FILE_LINES (default 600).
#
# Output, one line per violation, sorted by file:
#   src/agent/main.c:180 main 130 lines        (line of the function's name)
#   src/agent/vms.c:1 (file) 693 lines
#
# A function is what the house style makes of one: the definition header
# (return type on its own line, then `name(args)`), an opening `{` alone at
# column 0, and the body up to the next `}` at column 0. Its length counts the
# physical lines from that `{` to that `}`, both included. Struct and array
# initialisers open their brace on the declaration line, so they do not count.
set -eu

if [ $# -eq 0 ]; then
	cd "$(dirname "$0")/.."
	set -- src
fi

files=$(find "$@" -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
[ -n "$files" ] || exit 0

# shellcheck disable=SC2086
exec python3 - "${MAX_FUNCTION_LINES:-80}" "${MAX_FILE_LINES:-600}" $files <<'EOF'
import re
import sys

max_fn, max_file = int(sys.argv[1]), int(sys.argv[2])
# The first identifier glued to '(' in a header is the function's name:
# `static char (*backends_of(struct x *t))[N]` gives backends_of.
name_re = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\(')
not_names = {'__attribute__', '_cleanup_', 'sizeof', 'typeof', '__typeof__'}
bad = []

def header_name(lines, brace):
    """Name of the function whose body opens at lines[brace]; its line index."""
    i = brace - 1
    while i >= 0:
        s = lines[i].rstrip()
        if not s or s.endswith((';', '}', '*/')) or s.startswith('#'):
            break
        i -= 1
    for j in range(i + 1, brace):
        for m in name_re.finditer(lines[j]):
            if m.group(1) not in not_names:
                return m.group(1), j
    return '?', brace

for path in sys.argv[3:]:
    with open(path, encoding='utf-8', errors='replace') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    if len(lines) > max_file:
        bad.append(f'{path}:1 (file) {len(lines)} lines')
    i = 0
    while i < len(lines):
        if not lines[i].startswith('{'):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith('}'):
            end += 1
        if end == len(lines):
            bad.append(f'{path}:{i + 1} ? no closing brace at column 0')
            break
        n = end - i + 1
        if n > max_fn:
            name, at = header_name(lines, i)
            bad.append(f'{path}:{at + 1} {name} {n} lines')
        i = end + 1

for b in bad:
    print(b)
if bad:
    print(f'check-length: {len(bad)} over the limits (functions > {max_fn} '
          f'lines, files > {max_file} lines)', file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
