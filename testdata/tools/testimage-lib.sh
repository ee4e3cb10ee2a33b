# testimage-lib.sh - shell functions the test image builders share
# (build-test-disk.sh, build-test-partition.sh): sourced, never run. The
# sourcing script defines die MESSAGE (print to stderr, exit 1) first and
# adds this file to its cache key.

# kernel_pkg -> prints the concrete kernel package linux-image-amd64 depends
# on (as root, after an apt-get update when the lists do not name it yet)
kernel_pkg() {
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  fi
  [ -n "$pkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update, or testdata/tools/deps.sh)"
  echo "$pkg"
}

# pack_initrd ROOT OUT.img -> writes the tree ROOT as a gzipped newc cpio
# archive, with fixed mtimes and order (the same inputs give the same
# initramfs), with cpio or else busybox cpio
pack_initrd() {
  local root=$1 out=$2
  find "$root" -exec touch -h -d @0 {} +
  if command -v cpio >/dev/null 2>&1; then
    ( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -n -6 ) > "$out"
  else
    ( cd "$root" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null | gzip -n -6 ) > "$out"
  fi
}
