#!/bin/sh
# linux.largest_paths: the biggest files and directories under $1 (same filesystem only).
set -u

TARGET=${1:-/var}
COUNT=${2:-20}

case "$COUNT" in
    '' | *[!0-9]*) echo "count must be a positive integer, got '$COUNT'" >&2; exit 2 ;;
esac
[ -d "$TARGET" ] || { echo "'$TARGET' is not a directory" >&2; exit 2; }
command -v du >/dev/null 2>&1 || { echo "du is not installed" >&2; exit 127; }

# du exits non-zero when some entries are unreadable; the sizes it could read still count.
du -x -a -k -- "$TARGET" 2>/dev/null | sort -rn | head -n "$COUNT" | awk '
    BEGIN { split("K M G T P", unit, " ") }
    {
        size = $1; i = 1
        while (size >= 1024 && i < 5) { size /= 1024; i++ }
        sub(/^[0-9]+[ \t]+/, "")
        printf "%8.1f%s  %s\n", size, unit[i], $0
    }'
