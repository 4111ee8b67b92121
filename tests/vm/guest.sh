#!/bin/bash
# Inside the VM (started by tests/vm/vmrun.sh): print what the guest is, then run the VM suite
# (tests/vm/vitest.config.ts). Extra arguments go to vitest (file filters, -t NAME).
# With $VMRUN_OUT (a host directory), vitest's JSON report lands there for the host to read.
set -u
cd "$(dirname "$0")/../.." || exit 125
if [ "${RETIS_IN_VM:-}" != 1 ]; then
  echo "guest.sh: refusing to run outside the VM (it loads modules and builds bridges); use npm run test:vm" >&2
  exit 2
fi
echo "guest: kernel $(uname -r), $(nproc) CPU, $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo), node $(node --version)"
# A process that crashes (a signal with a core) leaves its core in the shared out directory,
# named after its executable's path, for the host to read with gdb (tests/vm/vm.ts coreReports).
if [ -n "${VMRUN_OUT:-}" ]; then
  ulimit -c unlimited
  echo "$VMRUN_OUT/core.%E.%p" > /proc/sys/kernel/core_pattern
fi
args=(run --config tests/vm/vitest.config.ts)
if [ -n "${VMRUN_OUT:-}" ]; then
  args+=(--reporter=default --reporter=json "--outputFile.json=$VMRUN_OUT/vitest.json")
fi
# Through a pipe: on the serial console (a tty) vitest would redraw its progress lines in place.
node_modules/.bin/vitest "${args[@]}" "$@" 2>&1 | cat
exit "${PIPESTATUS[0]}"
