#!/usr/bin/env bash
# demo.sh BIN - the main job on embedded defaults (the demo's directory in
# [lightsout] script_paths for its local images, and a [pxe] section for
# pxe_ilo), in a throw-away directory: a simulated mixed fleet (gen8, gen9,
# gen10 x2) whose servers run an emulated IPA ramdisk; import it, inspect
# everything, deploy a small test image with each driver through the
# built-in publisher: agent_ilo to a Gen10 (UEFI, secure boot) and a Gen8
# (BIOS), pxe_ilo to a Gen9 with iLO Standard (the ramdisk boots over PXE
# from `lightsout serve`'s built-in boot server), iscsi_ilo to a Gen10 (a
# real tgtd exports the disk, qemu-img writes it; skipped with a message
# without tgtd, qemu-img with libiscsi or root); undeploy all but the first
# (automated cleaning), then show the recorded runs and, per driver, the
# phases that differ.
# MACHINE=qemu: a real boot instead (see demo_qemu below).
set -euo pipefail
BIN=${1:-bin/lightsout}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d /tmp/lightsout-demo.XXXXXX)
export XDG_STATE_HOME=$WORK/state LIGHTSOUT_CONFIG=$WORK/lightsout.conf
SIM_PID= SERVE_PID=
cleanup() {
  for pid in $SIM_PID $SERVE_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
cd "$WORK"

# wait_ready LOG: wait until the simulator printed "ready" (it keeps running).
wait_ready() {
  for _ in $(seq 1 600); do
    grep -q '^ready' "$1" 2>/dev/null && return 0
    kill -0 "$SIM_PID" 2>/dev/null || { cat "$1"; exit 1; }
    sleep 0.1
  done
  echo "the simulator did not start"; cat "$1"; exit 1
}

# MACHINE=qemu (make demo MACHINE=qemu): a real boot. The simulated iLO is
# backed by a qemu VM (TCG when there is no KVM: a few minutes); lightsout
# builds its own deploy ramdisk (Debian's kernel + the static lightsout
# binary as the agent), the VM boots it from virtual media, the agent writes
# a small bootable test image (testdata/tools/build-test-disk.sh: Debian's
# signed shim, GRUB and kernel) to the VM's disk, and the VM boots it with
# secure boot on. The VM reaches the host's loopback as 10.0.2.2 (qemu user
# networking): the callback API and the publisher listen on 127.0.0.1 and
# are advertised to the node under that name.
demo_qemu() {
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  local agent_port pub_port raw qcow id
  agent_port=$(free_port); pub_port=$(free_port)

  say lightsout image ramdisk -o ramdisk
  "$BIN" image ramdisk -o ramdisk
  ls -l ramdisk

  say testdata/tools/build-test-disk.sh "# the instance image: GPT, syslinux (BIOS), signed shim+GRUB+kernel (UEFI)"
  read -r raw qcow < <("$TOOLS/build-test-disk.sh" "${XDG_CACHE_HOME:-$HOME/.cache}/lightsout/demo-testdisk" | tail -1)
  cp "$raw" image.raw
  SUM=sha256:$(sha256sum image.raw | cut -d' ' -f1)

  # A site step after the bundled deploy: wait until the instance (which
  # powers off after printing its marker) has booted, so the run's console
  # capture (IPMI SOL) holds the instance's boot too.
  mkdir -p site
  printf '%s\n' 'local deploy = require("bundled.deploy")' 'local power = require("power")' \
    'deploy.add_step("boot instance", "demo: wait for the instance to boot and power off", function(ctx)' \
    '  power.wait(ctx.bmc, "power off", { retries = 300, interval = 2 })' 'end)' 'deploy.run()' >site/deploy.lua
  printf '%s\n' '[lightsout]' "script_paths = $WORK" "scripts_path = $WORK/site" \
    "agent_address = 127.0.0.1:$agent_port" "publish_address = 127.0.0.1:$pub_port" \
    "publish_url = http://10.0.2.2:$pub_port" '[conductor]' "api_url = http://10.0.2.2:$agent_port" \
    '[deploy]' 'erase_devices_priority = 0' >lightsout.conf
  say "cat lightsout.conf site/deploy.lua"
  cat lightsout.conf site/deploy.lua

  say lightsout sim --machine qemu --nodes gen10=1 --inventory fleet.json '&'
  "$BIN" sim --machine qemu --nodes gen10=1 --inventory fleet.json >sim.log 2>&1 &
  SIM_PID=$!
  wait_ready sim.log
  cat sim.log

  say lightsout node import fleet.json
  "$BIN" node import fleet.json
  say lightsout node set gen10-0 -i deploy_kernel=ramdisk/lightsout-deploy.kernel -i deploy_ramdisk=ramdisk/lightsout-deploy.initramfs
  "$BIN" node set gen10-0 -i deploy_kernel="$WORK/ramdisk/lightsout-deploy.kernel" \
    -i deploy_ramdisk="$WORK/ramdisk/lightsout-deploy.initramfs"
  say lightsout node manage gen10-0
  "$BIN" node manage gen10-0
  say lightsout node provide gen10-0 "# automated cleaning: the agent wipes the disk's metadata"
  "$BIN" node provide gen10-0
  say lightsout deploy gen10-0 --image-source image.raw --image-checksum "$SUM" --boot-mode uefi --secure-boot
  "$BIN" deploy gen10-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode uefi --secure-boot
  say lightsout node list
  "$BIN" node list
  id=$("$BIN" runs list --node gen10-0 --limit 1 --json | grep -o '"id": [0-9]*' | grep -o '[0-9]*$')
  say lightsout runs show "$id"
  "$BIN" runs show "$id"
  say "lightsout runs show $id --console | grep LIGHTSOUT-"
  "$BIN" runs show "$id" --console | tr -d '\r' | grep -a 'LIGHTSOUT-'
  "$BIN" runs show "$id" --console | tr -d '\r' | grep -aq 'LIGHTSOUT-TEST-IMAGE-BOOTED firmware=uefi secureboot=1' ||
    { echo "demo: the instance did not boot with secure boot"; exit 1; }
}
if [ "${MACHINE:-}" = qemu ]; then
  demo_qemu
  exit 0
elif [ -n "${MACHINE:-}" ]; then
  echo "demo.sh: MACHINE=$MACHINE: use qemu, or leave it unset for the emulated ramdisk" >&2
  exit 2
fi

# A deploy ISO for the emulated ramdisk: it reads the kernel command line
# and the virtual floppy's parameters.txt, as IPA does. The kernel and
# initrd are placeholders (only the emulated ramdisk "boots" it).
head -c 4096 /dev/urandom >vmlinuz
head -c 4096 /dev/urandom >initrd
loader=()
if [ ! -e /usr/lib/ISOLINUX/isolinux.bin ]; then
  head -c 2048 /dev/zero >isolinux.bin
  head -c 2048 /dev/zero >ldlinux.c32
  loader=(--isolinux isolinux.bin --ldlinux ldlinux.c32)
fi
say lightsout image iso -o ipa.iso --kernel vmlinuz --ramdisk initrd --bios-only ...
"$BIN" image iso -o ipa.iso --kernel vmlinuz --ramdisk initrd --append "nofb nomodeset boot_method=vmedia" \
  --bios-only --no-progress "${loader[@]}"

# Embedded defaults plus what the demo's directory needs: scripts may read
# files only inside the run's own directories and [lightsout] script_paths;
# pxe_ilo's files go to a tftp_root here, which `lightsout serve` (the
# built-in boot server, [pxe] builtin_server) serves over HTTP to the
# emulated ramdisk's network boots (its TFTP server on a free port).
mkdir -p tftpboot
printf '%s\n' '[lightsout]' "script_paths = $WORK" '[pxe]' "tftp_root = $WORK/tftpboot" 'builtin_server = true' \
  'tftp_address = 127.0.0.1:0' 'http_address = 127.0.0.1:0' '[deploy]' "http_root = $WORK/tftpboot" >lightsout.conf
say "cat lightsout.conf"
cat lightsout.conf

# A small test image and its checksum.
head -c $((16 << 20)) /dev/urandom >image.raw
SUM=sha256:$(sha256sum image.raw | cut -d' ' -f1)

say lightsout serve --listen 127.0.0.1:0 '&' "# only for its built-in PXE boot server here"
"$BIN" serve --listen 127.0.0.1:0 >serve.log 2>&1 &
SERVE_PID=$!
PXE_URL=
for _ in $(seq 1 600); do
  PXE_URL=$(grep -o 'HTTP boot server listening" url=http://[0-9.:]*' serve.log 2>/dev/null | grep -o 'http://.*') && break
  kill -0 "$SERVE_PID" 2>/dev/null || { cat serve.log; exit 1; }
  sleep 0.1
done
[ -n "$PXE_URL" ] || { echo "lightsout serve did not start its HTTP boot server"; cat serve.log; exit 1; }
echo "HTTP boot server: $PXE_URL"

# gen9-0 (iLO 4) has only iLO Standard: no virtual media, so pxe_ilo.
echo '{"gen9-0": {"license": "iLO Standard"}}' >hw.json
say lightsout sim --nodes gen8=1,gen9=1,gen10=2 --inventory fleet.json --deploy-iso ipa.iso --pxe-server "$PXE_URL" --hardware hw.json '&'
"$BIN" sim --nodes gen8=1,gen9=1,gen10=2 --inventory fleet.json --deploy-iso "$WORK/ipa.iso" \
  --pxe-server "$PXE_URL" --hardware hw.json --disk-size $((64 << 20)) >sim.log 2>&1 &
SIM_PID=$!
wait_ready sim.log
cat sim.log

say lightsout node import fleet.json
"$BIN" node import fleet.json
say lightsout node manage gen8-0 gen9-0 gen10-0 gen10-1
"$BIN" node manage gen8-0 gen9-0 gen10-0 gen10-1
say lightsout inspect --all
"$BIN" inspect --all

# The three drivers: agent_ilo (the default: gen8-0, gen10-0), pxe_ilo
# (gen9-0) and iscsi_ilo (gen10-1). iscsi_ilo needs tgtd (the emulated
# ramdisk exports its disk with a real one, as root) and qemu-img with
# libiscsi (lightsout writes the image over iSCSI); without them its step
# is skipped.
ISCSI=
if [ "$(id -u)" != 0 ]; then
  ISCSI_SKIP="not root (the emulated ramdisk's tgtd needs root): run make demo as root"
elif ! command -v tgtd >/dev/null || ! command -v tgtadm >/dev/null; then
  ISCSI_SKIP="tgtd/tgtadm not found (Debian package tgt; make deps installs it)"
elif ! command -v qemu-img >/dev/null || ! qemu-img --help | grep -qw iscsi; then
  ISCSI_SKIP="qemu-img with libiscsi not found (Debian packages qemu-utils, qemu-block-extra; make deps installs them)"
else
  ISCSI=1
fi
# iscsi_port: where the ramdisk's target listens (3260 may be taken): a free port.
ISCSI_PORT=3260
for _ in $(seq 1 100); do
  ISCSI_PORT=$((20000 + RANDOM % 12000))
  (exec 3<>"/dev/tcp/127.0.0.1/$ISCSI_PORT") 2>/dev/null || break
done
say lightsout node set gen9-0 --driver pxe_ilo -i deploy_kernel=vmlinuz -i deploy_ramdisk=initrd "| grep '^driver '"
"$BIN" node set gen9-0 --driver pxe_ilo -i deploy_kernel="$WORK/vmlinuz" -i deploy_ramdisk="$WORK/initrd" | grep '^driver '
if [ -n "$ISCSI" ]; then
  say lightsout node set gen10-1 --driver iscsi_ilo -i iscsi_chap=true -i iscsi_port="$ISCSI_PORT" "| grep '^driver '"
  "$BIN" node set gen10-1 --driver iscsi_ilo -i iscsi_chap=true -i iscsi_port="$ISCSI_PORT" | grep '^driver '
fi

say lightsout node provide gen8-0 gen9-0 gen10-0 gen10-1 "# automated cleaning (gen9-0's agent boots over PXE)"
"$BIN" node provide gen8-0 gen9-0 gen10-0 gen10-1
say lightsout deploy gen10-0 --image-source image.raw --image-checksum "$SUM" --boot-mode uefi --secure-boot
"$BIN" deploy gen10-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode uefi --secure-boot
say lightsout deploy gen8-0 --image-source image.raw --image-checksum "$SUM" --boot-mode bios
"$BIN" deploy gen8-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode bios
say lightsout undeploy gen8-0
"$BIN" undeploy gen8-0
say lightsout deploy gen9-0 --image-source image.raw --image-checksum "$SUM" --boot-mode uefi "# pxe_ilo"
"$BIN" deploy gen9-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode uefi
say lightsout undeploy gen9-0
"$BIN" undeploy gen9-0
if [ -n "$ISCSI" ]; then
  say lightsout deploy gen10-1 --image-source image.raw --image-checksum "$SUM" --boot-mode uefi "# iscsi_ilo"
  "$BIN" deploy gen10-1 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode uefi
  say lightsout undeploy gen10-1
  "$BIN" undeploy gen10-1
else
  echo "demo: skipping the iscsi_ilo deploy: $ISCSI_SKIP"
fi
say lightsout node list
"$BIN" node list
say lightsout runs list
"$BIN" runs list
# deploy_run NODE: the id of the node's last deploy run.
deploy_run() { "$BIN" runs list --node "$1" | awk '$2 == "deploy" { id = $1 } END { print id }'; }
ID=$(deploy_run gen10-0)
say lightsout runs show "$ID"
"$BIN" runs show "$ID"

# The same image with each driver: how each deploy booted its ramdisk and
# wrote the disk.
phases() {
  "$BIN" runs show "$1" | awk '/▶ step boot deploy ramdisk/ { on = 1 }
    on && /▶ step|call (ilo\.insert_virtual_media|ilo\.set_one_time_boot|pxe\.|agent\.command|iscsi\.write)/ { print }
    /■ step write image/ { on = 0 }' | cut -c1-150
}
nodes=("gen10-0 agent_ilo: virtual media, the agent writes the image" "gen9-0 pxe_ilo: PXE from the built-in boot server, the agent writes the image")
[ -n "$ISCSI" ] && nodes+=("gen10-1 iscsi_ilo: virtual media, lightsout writes the image over iSCSI")
printf '\n# The same image with each driver: phases = the steps from "boot deploy ramdisk" to "write image"\n'
printf '# with the calls that differ (virtual media or PXE; the agent or lightsout over iSCSI writes)\n'
for entry in "${nodes[@]}"; do
  node=${entry%% *} id=$(deploy_run "${entry%% *}")
  say "lightsout runs show $id | phases" "# $node, ${entry#* }"
  phases "$id"
done
