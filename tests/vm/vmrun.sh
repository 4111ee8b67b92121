#!/bin/bash
# vmrun.sh — run one command inside a throwaway VM that boots Debian's linux-image-amd64 (6.1) kernel.
#
#   tests/vm/vmrun.sh [--tcg|--kvm] [--] CMD [ARGS...]   run CMD (in the host's $PWD), exit with its status
#   tests/vm/vmrun.sh --check                           list missing pieces (exit 1 if any)
#   tests/vm/vmrun.sh --install                         apt-get install the missing pieces (root)
#
# Why a VM: the host kernel (6.18, no CONFIG_KPROBES, fentry refused) cannot run kprobe/fentry
# programs; the distribution kernel can. The guest sees the host's / read-only over virtio-9p with a
# RAM overlay on top (the guest may write anywhere; nothing reaches the host), so the project, node,
# clang and every tool are used exactly as installed on the host. Nothing is booted from the host's
# /boot configuration: the kernel image is handed to QEMU directly, with a 1-2 MB initramfs built
# here from the kernel's own modules (cached in build/vm/).
#
# Environment:
#   VMRUN_MEM (2G) VMRUN_SMP (2) VMRUN_TIMEOUT (seconds, 900) VMRUN_KVER (a /lib/modules/6.1.* name)
#   VMRUN_ACCEL (auto: kvm only with kvm_intel/kvm_amd, else tcg) VMRUN_APPEND (extra kernel args)
#   VMRUN_OUT   host directory shared read-write, seen in the guest as $VMRUN_OUT=/run/vmout
#               (results, logs; the guest's dmesg is saved there as dmesg.txt at the end)
#   VMRUN_ENV   names of host environment variables to pass in (RETIS_IN_VM=1 is always set)
#   VMRUN_CACHE (build/vm) where the initramfs is cached
#   VMRUN_ALLOW_KERNEL_INSTALL=1  let --install add linux-image-amd64 even on a host with a bootloader
# Exit status: CMD's own; 125 when the VM itself failed (missing piece, QEMU error, crash, timeout:
# the reason is printed on stderr with a "vmrun:" prefix); 2 on usage errors.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
die() { echo "vmrun: $*" >&2; exit 125; }

# Packages the runner needs, with the command that proves each is installed.
# (openvswitch-switch is the VM suite's business, not the runner's: see tests/vm/vm.ts.)
declare -A NEED=([qemu-system-x86]=qemu-system-x86_64 [cpio]=cpio [kmod]=modprobe [gzip]=gzip)

# The guest kernel: the newest installed 6.1 (Debian 12's linux-image-amd64), or VMRUN_KVER.
# Image and modules come from one package, so they always match.
pick_kernel() {
  if [ -n "${VMRUN_KVER:-}" ]; then echo "$VMRUN_KVER"; return; fi
  local k best=
  # Version order, not glob order: 6.1.0-56 is newer than 6.1.0-9.
  for k in $(ls -d /lib/modules/6.1.* 2>/dev/null | sort -V); do
    if [ -f "/boot/vmlinuz-${k##*/}" ]; then best=${k##*/}; fi
  done
  echo "$best"
}

missing() {   # prints "package: reason" lines
  local p
  for p in "${!NEED[@]}"; do command -v "${NEED[$p]}" >/dev/null || echo "$p: ${NEED[$p]} not found"; done
  # The initramfs has no libc: Debian's plain "busybox" package (dynamically linked) would not start.
  if [ ! -x /bin/busybox ]; then echo "busybox-static: /bin/busybox not found"
  elif command -v dpkg-query >/dev/null && [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
    echo "busybox-static: /bin/busybox is not Debian's static build"
  fi
  local kv; kv=$(pick_kernel)
  if [ -z "$kv" ]; then echo "linux-image-amd64: no /boot/vmlinuz-6.1.* with its /lib/modules (Debian 12 kernel)"
  elif [ ! -f "/boot/vmlinuz-$kv" ] || [ ! -f "/lib/modules/$kv/modules.dep" ]; then
    echo "linux-image-amd64: kernel $kv is incomplete (/boot/vmlinuz-$kv, /lib/modules/$kv/modules.dep)"
  elif [ ! -r "/boot/vmlinuz-$kv" ]; then echo "root: /boot/vmlinuz-$kv is not readable (run as root)"
  fi
}

install_missing() {
  local pkgs
  pkgs=$(missing | cut -d: -f1 | { grep -v '^root$' || true; } | sort -u | tr '\n' ' ')
  [ -n "$pkgs" ] || { echo "vmrun: nothing to install" >&2; return 0; }
  [ "$(id -u)" = 0 ] || die "missing packages ($pkgs); as root: apt-get install --no-install-recommends $pkgs"
  command -v apt-get >/dev/null || die "missing packages ($pkgs) and no apt-get here (Debian 12 expected)"
  # A kernel package runs its postinst hooks: initramfs-tools writes /boot/initrd.img-* (unused by
  # us) and /vmlinuz symlinks, and zz-update-grub adds a boot entry when GRUB is installed. On a
  # container or CI runner without a bootloader that is harmless; on a machine that boots from this
  # disk it changes the boot menu, so it is refused unless asked for explicitly.
  if [[ " $pkgs " == *" linux-image-amd64 "* ]] && [ -z "${VMRUN_ALLOW_KERNEL_INSTALL:-}" ] &&
     { [ -x /usr/sbin/update-grub ] || [ -e /boot/grub/grub.cfg ] || [ -d /boot/efi/EFI ] || [ -d /boot/loader/entries ]; }; then
    die "this host has a bootloader: installing linux-image-amd64 would add a boot entry. Install it yourself (apt-get install --no-install-recommends linux-image-amd64) or set VMRUN_ALLOW_KERNEL_INSTALL=1"
  fi
  echo "vmrun: apt-get install $pkgs" >&2
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d-style denials are fine: we never want host daemons from these packages.
  apt-get install -y -q --no-install-recommends $pkgs >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends $pkgs >&2; } ||
    die "apt-get install $pkgs failed (see above)"
}

# Everything runs from main(): bash parses a function whole before running it, so editing this
# file while a VM runs (it takes minutes) cannot make the running copy read half-old lines.
main() {
  ACCEL=${VMRUN_ACCEL:-auto}
  while [ $# -gt 0 ]; do
    case "$1" in
      --check) m=$(missing); [ -z "$m" ] && { echo "vmrun: ready (kernel $(pick_kernel))"; exit 0; }
               echo "$m" | sed 's/^/vmrun: missing /' >&2; exit 1 ;;
      --install) install_missing; m=$(missing); [ -z "$m" ] || die "still missing: $m"; exit 0 ;;
      --tcg) ACCEL=tcg; shift ;;
      --kvm) ACCEL=kvm; shift ;;
      --) shift; break ;;
      -*) echo "vmrun: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || { echo "usage: $0 [--tcg|--kvm] [--] CMD [ARGS...] | --check | --install" >&2; exit 2; }

  m=$(missing) || true
  [ -z "$m" ] || die "cannot boot the VM:"$'\n'"$(echo "$m" | sed 's/^/  missing /')"$'\n'"  fix: tests/vm/vmrun.sh --install (root), or apt-get install --no-install-recommends qemu-system-x86 linux-image-amd64 busybox-static"
  KV=$(pick_kernel)

  # KVM only where it is the real thing: this project's dev host exposes /dev/kvm from kvm-pvm, which
  # needs PVM-aware guests (stock kernels abort on an MSR or hang), so "auto" wants kvm_intel/kvm_amd.
  if [ "$ACCEL" = auto ]; then
    ACCEL=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then ACCEL=kvm; fi
  fi
  case "$ACCEL" in tcg) CPU=max;; kvm) CPU=host;; *) die "VMRUN_ACCEL must be auto, tcg or kvm (got $ACCEL)";; esac

  #### initramfs: busybox + the modules needed to mount the root (virtio-pci, 9p, overlay) ####
  CACHE=${VMRUN_CACHE:-$ROOT/build/vm}
  mkdir -p "$CACHE"
  # Keyed by this script's content: the /init below lives here, so editing it rebuilds.
  SUM=$(cksum < "${BASH_SOURCE[0]}" | cut -d' ' -f1)
  INITRD=$CACHE/initrd-$KV-$SUM.cpio.gz
  if [ ! -s "$INITRD" ]; then
    d=$(mktemp -d)
    mkdir -p "$d"/{bin,mods,lower,rw,newroot,proc,sys,dev}
    cp /bin/busybox "$d/bin/"
    # Dependency order from modprobe itself; the numeric prefix keeps it through the glob in /init.
    n=10
    for ko in $(for x in virtio_pci 9pnet_virtio 9p overlay; do modprobe -S "$KV" --show-depends "$x"; done |
                awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
      case "$ko" in *.ko) ;; *) rm -rf "$d"; die "module $ko is compressed; busybox insmod needs plain .ko";; esac
      cp "$ko" "$d/mods/$((n++))-${ko##*/}"
    done
    cat > "$d/init" <<'INIT'
#!/bin/busybox sh
# PID 1 of the initramfs: mount the host root (9p, read-only) under a tmpfs overlay, then
# switch_root into it and run the stage-2 script that vmrun.sh left in the shared xfer directory.
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "vmrun-init: $*"; poweroff -f; }
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in /mods/*.ko; do insmod "$m" || fail "insmod $m"; done
o=trans=virtio,version=9p2000.L,msize=262144
# cache=loose: the host tree does not change under us in a way that matters, and it is much faster.
mount -t 9p -o $o,ro,cache=loose hostroot /lower || fail "9p mount of the host root"
mount -t tmpfs -o mode=755 rw /rw && mkdir -p /rw/u /rw/w
R=/newroot
# An overlay rather than tmpfs on /tmp: the repository and its build/ may live under host /tmp.
mount -t overlay -o lowerdir=/lower,upperdir=/rw/u,workdir=/rw/w root $R || fail "overlay root"
mount -t proc proc $R/proc; mount -t sysfs sys $R/sys; mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm; mount -t devpts devpts $R/dev/pts; mount -t tmpfs shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run
# bpffs and cgroup2 as a distribution boot has them. tracefs and debugfs are left to the tests:
# mounting tracefs when needed (and unmounting it after) is part of what tests/bpf checks.
mount -t bpf bpf $R/sys/fs/bpf; mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mkdir -p $R/run/xfer && mount -t 9p -o $o xfer $R/run/xfer || fail "9p mount of xfer"
if grep -q vmout /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mkdir -p $R/run/vmout && mount -t 9p -o $o vmout $R/run/vmout || fail "9p mount of VMRUN_OUT"
fi
hostname vm; ip link set lo up
# PID 1 keeps its script and shell open to the end: run them from tmpfs, so xfer can be unmounted.
cp /bin/busybox $R/run/busybox; cp $R/run/xfer/stage2 $R/run/stage2
echo "vmrun: guest up after $(cut -d' ' -f1 /proc/uptime)s (kernel $(uname -r))"
# switch_root, not chroot: the kernel's usermode helpers (request_module -> /sbin/modprobe, used by
# "ip link add type veth", nft, openvswitch) run in PID 1's root and must see the real tree.
exec switch_root $R /run/busybox sh /run/stage2
INIT
    chmod +x "$d/init"
    (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.$$"
    mv "$INITRD.$$" "$INITRD"   # atomic: parallel runs never see half a file
    rm -rf "$d"
    # Initramfs of older vmrun.sh versions (QEMU reads the file at start: old ones are not in use).
    find "$CACHE" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -name "${INITRD##*/}" -mmin +10 -delete
  fi

  #### per-run transfer directory: the command and its exit status ####
  X=$(mktemp -d /tmp/vmrun.XXXXXX)
  trap 'rm -rf "$X"' EXIT
  NODE_DIR=$(dirname "$(command -v node 2>/dev/null || echo /usr/bin/node)")
  {
    echo '# stage 2, run by busybox sh as PID 1 of the guest (written by vmrun.sh)'
    echo 'B=/run/busybox'
    echo "export HOME=/root TERM=dumb LANG=C.UTF-8 RETIS_IN_VM=1"
    printf 'export PATH=%q\n' "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$NODE_DIR"
    if [ -n "${VMRUN_OUT:-}" ]; then echo 'export VMRUN_OUT=/run/vmout'; fi
    for v in ${VMRUN_ENV:-}; do
      if [ -n "${!v+x}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
    done
    # The command runs in a child bash (PID 1 must survive to record the status and power off).
    printf '/bin/bash -c %q vmrun-cmd' "cd $(printf %q "$PWD") 2>/dev/null || cd /; exec \"\$@\""
    printf ' %q' "$@"
    echo ' </dev/null >/dev/console 2>&1'
    echo 'echo $? > /run/xfer/rc'
    echo '[ -d /run/vmout ] && $B dmesg > /run/vmout/dmesg.txt'
    echo '$B sync; $B umount /run/vmout 2>/dev/null; $B umount /run/xfer; $B poweroff -f'
  } > "$X/stage2"

  VOUT=()
  if [ -n "${VMRUN_OUT:-}" ]; then
    mkdir -p "$VMRUN_OUT" || die "cannot create VMRUN_OUT=$VMRUN_OUT"
    VOUT=(-virtfs "local,path=$(cd "$VMRUN_OUT" && pwd),mount_tag=vmout,security_model=none,multidevs=remap")
  fi

  # qboot + edd=off: ~3 s less firmware time than SeaBIOS under TCG. -nic none: no network to the
  # host or beyond (QEMU would add user-mode networking by default).
  BIOS=()
  if [ -f /usr/share/qemu/qboot.rom ]; then BIOS=(-bios /usr/share/qemu/qboot.rom); fi  # else QEMU's SeaBIOS
  QEMU=(qemu-system-x86_64 -accel "$ACCEL" -cpu "$CPU" -m "${VMRUN_MEM:-2G}" -smp "${VMRUN_SMP:-2}"
    -nographic -no-reboot -nic none "${BIOS[@]}"
    -kernel "/boot/vmlinuz-$KV" -initrd "$INITRD"
    -append "console=ttyS0 quiet edd=off panic=-1 ${VMRUN_APPEND:-}"
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$X,mount_tag=xfer,security_model=none,multidevs=remap"
    "${VOUT[@]}")

  T0=$(date +%s.%N)
  set +e
  # sed -u: line-buffered CR stripping (tr would block-buffer the serial console).
  timeout -k 10 "${VMRUN_TIMEOUT:-900}" "${QEMU[@]}" </dev/null 2>"$X/qemu.err" | sed -u -e 's/\r$//' -e '/\] reboot: Power down$/d'
  QS=${PIPESTATUS[0]}
  set -e
  WALL=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

  if [ -f "$X/rc" ]; then
    RC=$(cat "$X/rc")
    echo "vmrun: exit status $RC, ${WALL}s wall (kernel $KV, $ACCEL, smp ${VMRUN_SMP:-2})" >&2
    exit "$RC"
  fi
  if [ -s "$X/qemu.err" ]; then sed 's/^/vmrun: qemu: /' "$X/qemu.err" >&2; fi
  case "$QS" in
    124|137) die "timed out after ${VMRUN_TIMEOUT:-900}s (VMRUN_TIMEOUT); QEMU killed" ;;
    0) die "the guest powered off without an exit status (kernel panic or init failure; see the console above)" ;;
    *) die "QEMU failed with status $QS after ${WALL}s" ;;
  esac
}

main "$@"
