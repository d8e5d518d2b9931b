#!/bin/sh
# linux.oom_kills: kernel OOM-killer lines, from the journal or dmesg.
set -u

SINCE=${1:-24 hours ago}
PATTERN='out of memory|oom-kill|oom_reaper|killed process'

if command -v journalctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    SOURCE="journalctl -k --since '$SINCE'"
    LINES=$(journalctl -k --no-pager -q --since "$SINCE" 2>&1) || {
        echo "journalctl failed: $LINES" >&2
        exit 1
    }
elif command -v dmesg >/dev/null 2>&1; then
    SOURCE="dmesg (whole ring buffer; 'since' is ignored)"
    LINES=$(dmesg 2>&1) || {
        echo "dmesg failed (reading the kernel log may need root): $LINES" >&2
        exit 1
    }
else
    echo "neither journalctl nor dmesg is available to read the kernel log" >&2
    exit 127
fi

FOUND=$(printf '%s\n' "$LINES" | grep -iE "$PATTERN")
if [ -z "$FOUND" ]; then
    echo "no OOM kills found in $SOURCE"
else
    printf '%s\n' "$FOUND"
fi
