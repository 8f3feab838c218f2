#!/usr/bin/env bash
# Install Aleph as a systemd service: a virtualenv under /opt/aleph, a config
# in /etc/aleph (written only if absent), an owner token as a systemd
# credential (generated only if absent), and the units in /etc/systemd/system.
# Safe to run again: it upgrades the package, rewrites changed units and
# keeps the config and the token. scripts/uninstall-service.sh undoes it.
#
# Usage: sudo scripts/install-service.sh [options]
#   --prefix DIR          where the virtualenv goes (default /opt/aleph)
#   --config-dir DIR      config and credentials (default /etc/aleph)
#   --unit-dir DIR        systemd units (default /etc/systemd/system)
#   --bin-dir DIR         link `aleph` here for `aleph ctl` (default /usr/local/bin; "" = none)
#   --source PATH|SPEC    what pip installs (default: this checkout)
#   --python PYTHON       the interpreter for the virtualenv (default python3, 3.11+)
#   --pip-args "ARGS"     extra pip arguments (e.g. "--no-index --find-links wheels/")
#   --socket-activation   also install aleph.socket (systemd opens the port)
#   --no-systemctl        do not call systemctl (images, containers, tests)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
prefix=/opt/aleph
config_dir=/etc/aleph
unit_dir=/etc/systemd/system
bin_dir=/usr/local/bin
source_spec=$repo
python=python3
pip_args=""
socket_activation=no
use_systemctl=yes

die() { echo "install-service: $*" >&2; exit 1; }
say() { echo "install-service: $*"; }

while [ $# -gt 0 ]; do
    case $1 in
        --prefix) prefix=$2; shift 2 ;;
        --config-dir) config_dir=$2; shift 2 ;;
        --unit-dir) unit_dir=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --source) source_spec=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --pip-args) pip_args=$2; shift 2 ;;
        --socket-activation) socket_activation=yes; shift ;;
        --no-systemctl) use_systemctl=no; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

for dir in "$prefix" "$config_dir" "$unit_dir"; do
    parent=$(dirname "$dir")
    [ -w "$dir" ] || [ -w "$parent" ] || [ ! -e "$parent" ] || die "cannot write $dir (run as root?)"
done
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python is older than 3.11"

# 1. The package, in its own virtualenv.
venv=$prefix/venv
if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv"
    install -d -m 0755 "$prefix"
    "$python" -m venv "$venv"
fi
say "installing aleph from $source_spec"
# shellcheck disable=SC2086  # pip_args is a list of words on purpose
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade $pip_args "$source_spec"
version=$("$venv/bin/aleph" version)
say "installed $version"

# 2. The config: written once, never overwritten.
install -d -m 0755 "$config_dir"
config=$config_dir/aleph.toml
if [ -e "$config" ]; then
    say "keeping the existing $config"
else
    say "writing $config"
    umask 022
    cat >"$config" <<'TOML'
# Aleph's configuration (see docs/configuration.md for every key).
# Reload after editing: systemctl reload aleph   (or: aleph ctl reload)
# Secrets never go here: they are systemd credentials in /etc/aleph/credstore.

[gateway]
host = "127.0.0.1"      # put a TLS reverse proxy in front before exposing it
port = 2135
allowed_origins = []    # browser origins allowed to connect, e.g. "https://*.example.com"

[provider]
kind = "echo"           # "openai" | "anthropic" | "echo" (a stand-in for trying Aleph out)
base_url = ""           # e.g. "http://127.0.0.1:11434/v1" for Ollama
model = ""

[daemon]
log_level = "info"
TOML
    chmod 0644 "$config"
fi

# 3. The owner token, as a credential only root and the service can read.
credstore=$config_dir/credstore
install -d -m 0700 "$credstore"
if [ -s "$credstore/owner_token" ]; then
    say "keeping the owner token in $credstore/owner_token"
else
    say "generating the owner token in $credstore/owner_token"
    (umask 077 && "$venv/bin/python" -c \
        'from aleph.security.tokens import new_token; print(new_token())' >"$credstore/owner_token.new")
    mv "$credstore/owner_token.new" "$credstore/owner_token"
fi

# 4. The units, pointing at this prefix and config directory.
install -d -m 0755 "$unit_dir"
changed=no
install_unit() {
    local name=$1 target=$unit_dir/$1 tmp
    tmp=$(mktemp)
    sed -e "s|/opt/aleph|$prefix|g" -e "s|/etc/aleph|$config_dir|g" "$repo/systemd/$name" >"$tmp"
    if [ -e "$target" ] && cmp -s "$tmp" "$target"; then
        rm -f "$tmp"
        say "unit $target is up to date"
    else
        install -m 0644 "$tmp" "$target"
        rm -f "$tmp"
        changed=yes
        say "installed $target"
    fi
}
install_unit aleph.service
if [ "$socket_activation" = yes ]; then
    install_unit aleph.socket
fi

# 5. The operations guide, which the units name as their documentation.
install -d -m 0755 "$prefix/share/doc/aleph"
install -m 0644 "$repo/docs/operations.md" "$prefix/share/doc/aleph/operations.md"

# 6. `aleph` on the PATH, for `aleph ctl`.
if [ -n "$bin_dir" ]; then
    install -d -m 0755 "$bin_dir"
    ln -sfn "$venv/bin/aleph" "$bin_dir/aleph"
fi

if [ "$use_systemctl" = yes ] && [ -d /run/systemd/system ]; then
    if [ "$changed" = yes ]; then
        systemctl daemon-reload
    fi
    if systemctl is-active --quiet aleph.service; then
        say "restarting the running service to use $version"
        systemctl try-restart aleph.service
    fi
else
    say "not calling systemctl (no running systemd, or --no-systemctl)"
fi

unit=aleph.service
[ "$socket_activation" = yes ] && unit=aleph.socket
cat <<EOF

Aleph is installed ($version).

Next steps:
  1. Review $config (then: aleph config check --config $config)
  2. Start it now and at boot:   systemctl enable --now $unit
  3. Check it:                   systemctl status aleph; aleph ctl status
  4. Follow its log:             journalctl -u aleph -f
  5. Connect a client with the owner token in $credstore/owner_token,
     or make a guest token:      aleph ctl token create --name phone --expires 7d
Bot tokens (Telegram, Discord) go in $credstore/ as telegram_token and
discord_token, enabled with the LoadCredential= lines in $unit_dir/aleph.service.
Undo with: $here/uninstall-service.sh
EOF
