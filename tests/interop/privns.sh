#!/usr/bin/env bash
# Runs a command in a private mount namespace, with private files and
# directories bind-mounted over system paths for that process tree only.
#
#   privns.sh [SRC=DST ...] -- CMD [ARG ...]
#
# Used for the Exim binary extracted from its Debian package (install.sh):
# the package conflicts with the installed Postfix (both are the system's
# mail-transport-agent), and the binary looks up its compile-time user
# Debian-exim before reading any configuration. Instead of creating that user
# on the system, exim_instance.sh writes a private passwd/group (the system's
# plus Debian-exim) under STATE_DIR and they are mounted over /etc/passwd and
# /etc/group here. Nothing outside
# this process tree sees them, and nothing of the system is written.
#
# There is no fork: unshare(1) without --fork and this script's final exec
# keep the PID, so the PID of "privns.sh ... -- CMD" is the PID of CMD.
set -euo pipefail

if [ "${PRIVNS_INNER:-}" != 1 ]; then
    export PRIVNS_INNER=1
    exec unshare --mount --propagation private -- "$0" "$@"
fi
unset PRIVNS_INNER

while [ $# -gt 0 ]; do
    case "$1" in
        --) shift; break ;;
        *=*)
            src="${1%%=*}"; dst="${1#*=}"
            mount --bind "$src" "$dst"
            shift ;;
        *) echo "privns.sh: bad argument $1 (want SRC=DST or --)" >&2; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { echo "privns.sh: no command" >&2; exit 2; }
exec "$@"
