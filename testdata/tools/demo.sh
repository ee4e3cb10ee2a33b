#!/usr/bin/env bash
# demo.sh BIN - the main job on embedded defaults, in a throw-away state dir:
# register a node, run a bundled playbook on it, show what the run did.
set -euo pipefail
BIN=${1:-bin/lightsout}
STATE=$(mktemp -d /tmp/lightsout-demo.XXXXXX)
export XDG_STATE_HOME=$STATE LIGHTSOUT_CONFIG=
trap 'rm -rf "$STATE"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say lightsout node create demo-gen10 --driver agent_ilo ...
"$BIN" node create demo-gen10 --driver agent_ilo \
  -i ilo_address=127.0.0.1 -i ilo_username=admin -i ilo_password=demo-password-123 \
  -i ilo_deploy_iso=http://127.0.0.1/ipa.iso -p capabilities=boot_mode:uefi,secure_boot:true \
  --port 52:54:00:12:34:56
say lightsout node manage demo-gen10
"$BIN" node manage demo-gen10
say lightsout run hello --node demo-gen10 --param greeting=Hello
"$BIN" run hello --node demo-gen10 --param greeting=Hello
say lightsout runs show 1
"$BIN" runs show 1
