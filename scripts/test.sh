#!/usr/bin/env bash
# Run every test of session_stream on throwaway servers:
#   pg_regress, isolation specs and TAP tests (make installcheck).
#
# On a fresh Debian 12 machine, as root or as a user with sudo:
#   scripts/test.sh
# It installs the packages it needs, builds and installs the extension,
# then runs the suites as an unprivileged user (PostgreSQL refuses root).
# Each harness starts its own server in a temporary directory with its own
# socket and port; no system-wide cluster is touched.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/common.sh
. "$here/scripts/common.sh"

install_packages
build_and_install "$here"

tree=$(copy_tree_for_test_user "$here")
status=0
as_test_user make -C "$tree" PG_CONFIG="$PG_CONFIG" installcheck PROVE_FLAGS=--verbose || status=$?
if [ "$status" -ne 0 ]; then
    for f in "$tree"/regression.diffs "$tree"/output_iso/regression.diffs; do
        [ -f "$f" ] && { echo "=== $f"; cat "$f"; }
    done
    for f in "$tree"/tmp_check/log/regress_log_*; do
        [ -f "$f" ] && { echo "=== $f"; tail -n 60 "$f"; }
    done
fi
[ "$status" -eq 0 ] && rm -rf "$tree"
exit "$status"
