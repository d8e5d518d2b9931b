#!/bin/sh
# demo.slow: print progress lines over time so there is output to tail.
set -u

STEPS=${1:-5}
INTERVAL=${2:-1}
for value in "$STEPS" "$INTERVAL"; do
    case "$value" in
        '' | *[!0-9]*) echo "steps and interval must be non-negative integers" >&2; exit 2 ;;
    esac
done

echo "starting: $STEPS steps, ${INTERVAL}s apart"
i=1
while [ "$i" -le "$STEPS" ]; do
    [ "$i" -gt 1 ] && sleep "$INTERVAL"
    echo "step $i/$STEPS: $(date '+%H:%M:%S') working..."
    if [ $((i % 3)) -eq 0 ]; then
        echo "step $i/$STEPS: a note on stderr" >&2
    fi
    i=$((i + 1))
done
echo "done"
