#!/usr/bin/env bash
# Undo scripts/install-service.sh: stop and disable the service, remove the
# units, the virtualenv and the `aleph` link. The config, the credentials and
# the state (sessions, tokens) are kept unless --purge is given. Safe to run
# again, and on a system where Aleph was never installed.
#
# Usage: sudo scripts/uninstall-service.sh [options]
#   --prefix DIR        the virtualenv's prefix (default /opt/aleph)
#   --config-dir DIR    config and credentials (default /etc/aleph)
#   --unit-dir DIR      systemd units (default /etc/systemd/system)
#   --bin-dir DIR       where `aleph` was linked (default /usr/local/bin; "" = none)
#   --state-dir DIR     the service's state (default /var/lib/aleph), removed with --purge
#   --purge             also remove the config, the credentials and the state
#   --no-systemctl      do not call systemctl
set -euo pipefail

prefix=/opt/aleph
config_dir=/etc/aleph
unit_dir=/etc/systemd/system
bin_dir=/usr/local/bin
state_dir=/var/lib/aleph
purge=no
use_systemctl=yes

die() { echo "uninstall-service: $*" >&2; exit 1; }
say() { echo "uninstall-service: $*"; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --config-dir) config_dir=$2; shift 2 ;;
        --unit-dir) unit_dir=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --state-dir) state_dir=$2; shift 2 ;;
        --purge) purge=yes; shift ;;
        --no-systemctl) use_systemctl=no; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ "$use_systemctl" = yes ] && [ -d /run/systemd/system ]; then
    for unit in aleph.socket aleph.service; do
        if systemctl list-unit-files --quiet "$unit" >/dev/null 2>&1; then
            systemctl disable --now "$unit" 2>/dev/null || true
        fi
    done
fi

for unit in aleph.service aleph.socket; do
    if [ -e "$unit_dir/$unit" ]; then
        rm -f "$unit_dir/$unit"
        say "removed $unit_dir/$unit"
    fi
done
if [ "$use_systemctl" = yes ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

if [ -n "$bin_dir" ] && [ -L "$bin_dir/aleph" ] \
    && [ "$(readlink "$bin_dir/aleph")" = "$prefix/venv/bin/aleph" ]; then
    rm -f "$bin_dir/aleph"
    say "removed the link $bin_dir/aleph"
fi

if [ -d "$prefix/venv" ]; then
    rm -rf "$prefix/venv"
    say "removed $prefix/venv"
fi
if [ -d "$prefix/share/doc/aleph" ]; then
    rm -rf "$prefix/share/doc/aleph"
    rmdir "$prefix/share/doc" "$prefix/share" 2>/dev/null || true
fi
rmdir "$prefix" 2>/dev/null || true

if [ "$purge" = yes ]; then
    # With DynamicUser=, the state lives in /var/lib/private/aleph behind a link.
    for dir in "$config_dir" "$state_dir" "$(dirname "$state_dir")/private/$(basename "$state_dir")"; do
        if [ -e "$dir" ] || [ -L "$dir" ]; then
            rm -rf "$dir"
            say "removed $dir"
        fi
    done
else
    say "kept $config_dir (config, credentials) and $state_dir (state); --purge removes them"
fi
say "done"
