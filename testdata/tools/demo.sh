#!/usr/bin/env bash
# demo.sh BIN - the main job on embedded defaults (one option: the demo's
# directory in [lightsout] script_paths, for its local images), in a
# throw-away directory: a simulated mixed fleet (gen8, gen9, gen10) whose
# servers boot an emulated IPA ramdisk from virtual media; import it,
# inspect everything, deploy a small test image to a Gen10 (UEFI, secure
# boot) and a Gen8 (BIOS) through the built-in publisher, undeploy one
# (automated cleaning), then show the recorded runs.
set -euo pipefail
BIN=${1:-bin/lightsout}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
WORK=$(mktemp -d /tmp/lightsout-demo.XXXXXX)
export XDG_STATE_HOME=$WORK/state LIGHTSOUT_CONFIG=$WORK/lightsout.conf
SIM_PID=
cleanup() {
  if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
cd "$WORK"

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

# Embedded defaults plus the one option local images need: scripts may read
# files only inside the run's own directories and [lightsout] script_paths.
printf '[lightsout]\nscript_paths = %s\n' "$WORK" >lightsout.conf
say "cat lightsout.conf"
cat lightsout.conf

# A small test image and its checksum.
head -c $((16 << 20)) /dev/urandom >image.raw
SUM=sha256:$(sha256sum image.raw | cut -d' ' -f1)

say lightsout sim --nodes gen8=1,gen9=1,gen10=1 --inventory fleet.json --deploy-iso ipa.iso '&'
"$BIN" sim --nodes gen8=1,gen9=1,gen10=1 --inventory fleet.json --deploy-iso "$WORK/ipa.iso" \
  --disk-size $((64 << 20)) >sim.log 2>&1 &
SIM_PID=$!
for _ in $(seq 1 300); do
  grep -q '^ready' sim.log 2>/dev/null && break
  kill -0 "$SIM_PID" 2>/dev/null || { cat sim.log; exit 1; }
  sleep 0.1
done
grep -q '^ready' sim.log || { echo "the simulator did not start"; cat sim.log; exit 1; }
cat sim.log

say lightsout node import fleet.json
"$BIN" node import fleet.json
say lightsout node manage gen8-0 gen9-0 gen10-0
"$BIN" node manage gen8-0 gen9-0 gen10-0
say lightsout inspect --all
"$BIN" inspect --all
say lightsout node provide gen8-0 gen10-0
"$BIN" node provide gen8-0 gen10-0
say lightsout deploy gen10-0 --image-source image.raw --image-checksum "$SUM" --boot-mode uefi --secure-boot
"$BIN" deploy gen10-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode uefi --secure-boot
say lightsout deploy gen8-0 --image-source image.raw --image-checksum "$SUM" --boot-mode bios
"$BIN" deploy gen8-0 --image-source "$WORK/image.raw" --image-checksum "$SUM" --boot-mode bios
say lightsout undeploy gen8-0
"$BIN" undeploy gen8-0
say lightsout node list
"$BIN" node list
say lightsout runs list
"$BIN" runs list
ID=$("$BIN" runs list --node gen10-0 --limit 1 --json | grep -o '"id": [0-9]*' | grep -o '[0-9]*$')
say lightsout runs show "$ID"
"$BIN" runs show "$ID"
