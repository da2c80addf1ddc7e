#!/usr/bin/env bash
# Idempotent installer for the SMTP interop test servers.
#   - Debian packages: postfix (NOT configured as a system mail service),
#     Cyrus SASL tools, swaks, openssl, Dovecot (core, lmtpd, submissiond; no
#     system service is started: policy-rc.d)
#   - exim4-daemon-light and opensmtpd (the latter from the release's
#     -backports suite, through a private apt configuration under pkgs/apt:
#     the release's own 6.8.0p2 cannot do TLS with OpenSSL 3): downloaded
#     with apt-get download and extracted into tests/interop/pkgs/ (NOT
#     installed: both conflict with postfix as the system's
#     mail-transport-agent), plus their libraries
#   - Python venv (tests/interop/venv) with aiosmtpd
#   - npm smtp-server, Haraka and the nodemailer client (for the tests of
#     our own server) into tests/interop/node_modules (from
#     package-lock.json; Haraka's optional plugins are left out: .npmrc)
# Safe to run repeatedly; every step is skipped when already done.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AIOSMTPD_VERSION="1.4.6"

log() { printf '[install] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi

# ---------------------------------------------------------------- apt ----
APT_PKGS=(postfix sasl2-bin libsasl2-modules swaks libnet-ssleay-perl openssl python3 ca-certificates
    dovecot-core dovecot-lmtpd dovecot-submissiond)
# Debian packages whose files are only extracted (see above):
# name:dir[:suite], where suite "backports" is the release's -backports.
EXTRACT_PKGS=(exim4-daemon-light:exim4 opensmtpd:opensmtpd:backports)
PKGS="$HERE/pkgs"
# Dependencies of the extracted packages that their binaries do not need
# (maintainer-script tools, the conflicting Exim base package).
SKIP_DEPS=" exim4-base debconf debconf-2.0 adduser lsb-base ed init-system-helpers "

missing_pkgs() {
    local p
    for p in "${APT_PKGS[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$p"
        fi
    done
}

master_pids() {
    # PIDs of any running Postfix master(8) daemon (read-only check).
    local p exe
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null || true)"
        case "$exe" in
            */postfix/master|*/postfix/sbin/master) printf '%s\n' "${p#/proc/}" ;;
        esac
    done
}

# PIDs of running mail daemons of the packages installed here (read-only
# check: a system service must not appear).
mail_daemon_pids() {
    local p exe
    for p in /proc/[0-9]*; do
        exe="$(readlink "$p/exe" 2>/dev/null || true)"
        case "$exe" in
            */postfix/master|*/postfix/sbin/master|/usr/sbin/dovecot|/usr/sbin/exim4|/usr/sbin/smtpd)
                printf '%s\n' "${p#/proc/}" ;;
        esac
    done
}

# ------------------------------------------- extracted packages (debs) ----
# apt-get download + dpkg-deb -x: the files only, no maintainer scripts, no
# /etc, no users, no service. Their library dependencies join APT_PKGS.
extracted_ok() { [ -x "$PKGS/exim4/usr/sbin/exim4" ] && [ -x "$PKGS/opensmtpd/usr/sbin/smtpd" ]; }

# A private apt configuration for the release's -backports suite: its own
# sources list (the system's Debian mirror, read from the system's sources),
# package lists and cache under pkgs/apt. Nothing in /etc/apt or
# /var/lib/apt is written; it is only used by "apt-get download".
BPO="$PKGS/apt"
bpo_opts() {
    printf '%s\n' -o "Dir::Etc::SourceList=$BPO/sources.list" -o "Dir::Etc::SourceParts=$BPO/sources.list.d" \
        -o "Dir::State::Lists=$BPO/lists" -o "Dir::Cache=$BPO/cache" -o "Acquire::Languages=none"
}
bpo_setup() {
    [ -f "$BPO/lists/.updated" ] && return 0
    local codename uri
    codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
    [ -n "$codename" ] || { log "ERROR: no VERSION_CODENAME in /etc/os-release"; return 1; }
    # The first Debian archive URI of the system's apt sources (deb822 or
    # one-line format).
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ && $2 !~ /security/ { print $2; exit }')"
    if [ -z "$uri" ]; then
        uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } } }')"
    fi
    [ -n "$uri" ] || { log "ERROR: no Debian archive in the system's apt sources"; return 1; }
    mkdir -p "$BPO/lists/partial" "$BPO/cache/archives/partial" "$BPO/sources.list.d"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s-backports main\n' \
        "$uri" "$codename" > "$BPO/sources.list"
    log "apt-get update (private configuration: $codename-backports only)"
    mapfile -t o < <(bpo_opts)
    apt-get "${o[@]}" update >&2
    touch "$BPO/lists/.updated"
}

if extracted_ok; then
    log "extracted packages already present in $PKGS"
else
    mkdir -p "$PKGS/debs"
    for e in "${EXTRACT_PKGS[@]}"; do
        IFS=: read -r name dir suite <<<"$e"
        if ! compgen -G "$PKGS/debs/${name}_*.deb" >/dev/null; then
            log "apt-get download $name${suite:+ ($suite)}"
            # _apt cannot write here: apt downloads as root (a warning only)
            if [ "$suite" = backports ]; then
                bpo_setup
                mapfile -t o < <(bpo_opts)
                (cd "$PKGS/debs" && apt-get "${o[@]}" download "$name" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
            else
                (cd "$PKGS/debs" && { apt-get download "$name" 2>&1 || { $SUDO apt-get update >/dev/null && apt-get download "$name" 2>&1; }; } | grep -v '^W: Download is performed unsandboxed' >&2 || true)
            fi
        fi
        deb="$(ls "$PKGS/debs/${name}"_*.deb 2>/dev/null | tail -n 1)"
        [ -n "$deb" ] || { log "ERROR: could not download $name"; exit 1; }
        rm -rf "${PKGS:?}/$dir"
        mkdir -p "$PKGS/$dir"
        dpkg-deb -x "$deb" "$PKGS/$dir"
        dpkg-deb -f "$deb" Version > "$PKGS/$dir/.version"
        log "extracted $(basename "$deb") into $PKGS/$dir"
    done
fi
for e in "${EXTRACT_PKGS[@]}"; do
    name="${e%%:*}"
    deb="$(ls "$PKGS/debs/${name}"_*.deb 2>/dev/null | tail -n 1 || true)"
    [ -n "$deb" ] || continue
    # "a (>= 1), b | c" -> a b (first alternative, no versions)
    for d in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g'); do
        case "$SKIP_DEPS" in *" $d "*) continue ;; esac
        APT_PKGS+=("$d")
    done
done

# No package's maintainer script may start a system service: Debian's
# invoke-rc.d asks policy-rc.d. This machine has one that denies every start
# (exit 101); where none exists, one is put in place for the install and
# removed afterwards.
POLICY=/usr/sbin/policy-rc.d
TEMP_POLICY=0
ensure_policy() {
    if [ ! -e "$POLICY" ]; then
        log "no $POLICY: installing a temporary one that denies service starts"
        printf '#!/bin/sh\n# temporary, from tests/interop/install.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
        $SUDO chmod 755 "$POLICY"
        TEMP_POLICY=1
    fi
}
drop_policy() {
    if [ "$TEMP_POLICY" -eq 1 ]; then
        $SUDO rm -f "$POLICY"
        TEMP_POLICY=0
    fi
}
trap drop_policy EXIT

mapfile -t MISSING < <(missing_pkgs)
if [ "${#MISSING[@]}" -gt 0 ]; then
    log "installing Debian packages: ${MISSING[*]}"
    ensure_policy
    before_masters="$(master_pids | sort | tr '\n' ' ')"
    before_daemons="$(mail_daemon_pids | sort | tr '\n' ' ')"
    # "No configuration": the package installs binaries only, writes no
    # /etc/postfix/main.cf and therefore never starts a system mail service.
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
    apt_install() {
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    }
    if ! apt_install "${MISSING[@]}"; then
        log "apt-get install failed; running apt-get update and retrying"
        $SUDO apt-get update
        apt_install "${MISSING[@]}"
    fi
    after_masters="$(master_pids | sort | tr '\n' ' ')"
    if [ "$before_masters" != "$after_masters" ]; then
        log "WARNING: a Postfix master process appeared during package install (before: '$before_masters' after: '$after_masters')."
        log "WARNING: it was NOT started by these scripts' private instances; inspect it manually (we do not stop system services)."
    fi
    after_daemons="$(mail_daemon_pids | sort | tr '\n' ' ')"
    if [ "$before_daemons" != "$after_daemons" ]; then
        log "WARNING: a mail daemon appeared during package install (before: '$before_daemons' after: '$after_daemons'); we do not stop system services"
    fi
    drop_policy
else
    log "Debian packages already installed"
fi

# Verify there is no system Postfix configuration / running system instance.
if [ -e /etc/postfix/main.cf ]; then
    log "note: /etc/postfix/main.cf exists (pre-existing system config); it is neither read nor modified by these scripts"
fi
for pid in $(master_pids); do
    cfg="$(tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | sed -n 's/^MAIL_CONFIG=//p' || true)"
    if [ -z "$cfg" ] || [ "$cfg" = /etc/postfix ]; then
        log "WARNING: a system Postfix master (pid $pid) is running; the interop scripts do not need or touch it"
    fi
done

for bin in /usr/sbin/postfix /usr/sbin/smtp-sink /usr/sbin/saslpasswd2 /usr/bin/swaks /usr/bin/openssl \
    /usr/sbin/dovecot /usr/lib/dovecot/lmtp /usr/lib/dovecot/submission \
    "$PKGS/exim4/usr/sbin/exim4" "$PKGS/opensmtpd/usr/sbin/smtpd"; do
    [ -x "$bin" ] || { log "ERROR: $bin missing after install"; exit 1; }
done

# ----------------------------------------------------------- python -----
VENV="$HERE/venv"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import aiosmtpd, sys; sys.exit(0 if aiosmtpd.__version__ == '$AIOSMTPD_VERSION' else 1)" 2>/dev/null; then
    log "python venv with aiosmtpd $AIOSMTPD_VERSION already present"
else
    PY=""
    for cand in python3 /usr/bin/python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            PY="$cand"; break
        fi
    done
    if [ -z "$PY" ]; then
        log "no python3 with venv/ensurepip; installing python3-venv"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \
            || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; }
        PY=/usr/bin/python3
    fi
    log "creating venv with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet "aiosmtpd==$AIOSMTPD_VERSION"
fi

# -------------------------------------------------------------- npm -----
if ! command -v npm >/dev/null 2>&1; then
    log "npm not found; installing nodejs + npm from Debian"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
        || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm; }
fi
if (cd "$HERE" && node -e 'require("smtp-server"); require("nodemailer"); require.resolve("Haraka/bin/haraka")' >/dev/null 2>&1) && [ -f "$HERE/package-lock.json" ]; then
    log "node smtp-server and Haraka already installed"
else
    cd "$HERE"
    if [ -f package-lock.json ]; then
        log "npm ci (from package-lock.json)"
        npm ci --no-audit --no-fund --loglevel=error
    else
        log "npm install (generating package-lock.json)"
        npm install --no-audit --no-fund --loglevel=error
    fi
fi

log "done"
