#!/bin/sh
# core.sendmail: send one email through the local sendmail binary.
#
# Positional arguments (core.sendmail's parameters, in position order):
#   1 sendmail_binary  2 from  3 to  4 subject  5 send_empty_body (1/0)
#   6 content_type     7 body  8 attachments (comma-separated paths)
set -u

die() {
    printf 'sendmail: %s\n' "$*" >&2
    exit 1
}

# Header values must stay on one line: a newline would let a parameter inject headers.
one_line() {
    printf '%s' "$1" | tr '\r\n' '  '
}

SENDMAIL_BINARY=${1:-}
FROM=$(one_line "${2:-}")
TO=$(one_line "${3:-}")
SUBJECT=$(one_line "${4:-}")
SEND_EMPTY_BODY=${5:-1}
CONTENT_TYPE=$(one_line "${6:-text/html}")
BODY=${7:-}
ATTACHMENTS=${8:-}

[ -n "$TO" ] || die "no recipient: the 'to' parameter is empty"
[ -n "$CONTENT_TYPE" ] || CONTENT_TYPE=text/html

case "$SEND_EMPTY_BODY" in
    1 | true | True | TRUE | yes) SEND_EMPTY_BODY=1 ;;
    *) SEND_EMPTY_BODY=0 ;;
esac
if [ -z "$BODY" ] && [ "$SEND_EMPTY_BODY" = 0 ]; then
    echo "body is empty and send_empty_body is false: no email sent"
    exit 0
fi

# -- the sendmail binary --------------------------------------------------------------------
if [ -n "$SENDMAIL_BINARY" ] && [ "$SENDMAIL_BINARY" != "None" ]; then
    SENDMAIL=$(command -v "$SENDMAIL_BINARY" 2>/dev/null) ||
        die "sendmail binary '$SENDMAIL_BINARY' was not found or is not executable"
else
    SENDMAIL=""
    for candidate in sendmail /usr/sbin/sendmail /usr/lib/sendmail; do
        if found=$(command -v "$candidate" 2>/dev/null); then
            SENDMAIL=$found
            break
        fi
    done
    [ -n "$SENDMAIL" ] || die "no sendmail binary found (looked for sendmail on PATH," \
        "/usr/sbin/sendmail and /usr/lib/sendmail). Install a mail transfer agent" \
        "(e.g. apt-get install msmtp-mta, postfix or exim4) or set sendmail_binary."
fi

# -- attachments ----------------------------------------------------------------------------
encode_base64() {
    if command -v base64 >/dev/null 2>&1; then
        base64 <"$1"
    elif command -v openssl >/dev/null 2>&1; then
        openssl base64 <"$1"
    else
        return 1
    fi
}

trim() {
    printf '%s' "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'
}

FILES=""
if [ -n "$ATTACHMENTS" ]; then
    command -v base64 >/dev/null 2>&1 || command -v openssl >/dev/null 2>&1 ||
        die "attachments need the base64 (coreutils) or openssl command, and neither is installed"
    OLD_IFS=$IFS
    IFS=','
    for path in $ATTACHMENTS; do
        IFS=$OLD_IFS
        path=$(trim "$path")
        [ -n "$path" ] || continue
        [ -f "$path" ] || die "attachment '$path' does not exist or is not a regular file"
        [ -r "$path" ] || die "attachment '$path' is not readable"
        FILES="$FILES$path
"
    done
    IFS=$OLD_IFS
fi

# -- the message ----------------------------------------------------------------------------
encode_header() {
    # Non-ASCII headers are sent as RFC 2047 encoded words when base64 is available.
    if printf '%s' "$1" | LC_ALL=C grep -q '[^ -~]' && command -v base64 >/dev/null 2>&1; then
        printf '=?UTF-8?B?%s?=' "$(printf '%s' "$1" | base64 | tr -d '\n')"
    else
        printf '%s' "$1"
    fi
}

BOUNDARY="squall-$(date +%s)-$$"

build_message() {
    printf 'From: %s\n' "$FROM"
    printf 'To: %s\n' "$TO"
    printf 'Subject: %s\n' "$(encode_header "$SUBJECT")"
    printf 'Date: %s\n' "$(LC_ALL=C date '+%a, %d %b %Y %H:%M:%S %z')"
    printf 'MIME-Version: 1.0\n'
    if [ -z "$FILES" ]; then
        printf 'Content-Type: %s; charset=UTF-8\n' "$CONTENT_TYPE"
        printf 'Content-Transfer-Encoding: 8bit\n\n'
        printf '%s\n' "$BODY"
        return
    fi
    printf 'Content-Type: multipart/mixed; boundary="%s"\n\n' "$BOUNDARY"
    printf -- '--%s\n' "$BOUNDARY"
    printf 'Content-Type: %s; charset=UTF-8\n' "$CONTENT_TYPE"
    printf 'Content-Transfer-Encoding: 8bit\n\n'
    printf '%s\n' "$BODY"
    printf '%s' "$FILES" | while IFS= read -r path; do
        name=$(basename "$path")
        printf -- '--%s\n' "$BOUNDARY"
        printf 'Content-Type: application/octet-stream; name="%s"\n' "$name"
        printf 'Content-Transfer-Encoding: base64\n'
        printf 'Content-Disposition: attachment; filename="%s"\n\n' "$name"
        encode_base64 "$path"
    done
    printf -- '--%s--\n' "$BOUNDARY"
}

if ! build_message | "$SENDMAIL" -oi -t; then
    die "$SENDMAIL failed to accept the message for $TO"
fi
echo "email to $TO sent with $SENDMAIL"
