/**
 * Clean shutdown of every open BPF resource (ring readers, links, objects).
 *
 * The kernel would drop links and maps when the process dies anyway; doing it ourselves still
 * matters: the reader thread must be stopped before the Node environment goes away, detaching is
 * ordered (readers, then links, then objects), and a capture that throws mid-way must not leave
 * probes firing while it tears down.
 *
 * - `process.on('exit')` closes everything synchronously (also after an uncaught exception).
 * - SIGINT/SIGTERM/SIGHUP: if nobody else listens, close everything and re-raise the signal so
 *   the exit status is the usual 128+N. If the application has its own handler (retis-capture
 *   does: it flushes and finalizes files first), leave the order to it; `exit` still cleans up.
 */

export interface Closable {
  /** Synchronous, idempotent. */
  close(): void;
}

/** Lower ranks close first. */
export const CLOSE_RANK = { reader: 0, link: 1, object: 2 } as const;

const open = new Map<Closable, number>();
let installed = false;
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function onSignal(sig: NodeJS.Signals): void {
  // Other listeners present: the application owns shutdown order (it must close or exit).
  if (process.listenerCount(sig) > 1) return;
  const n = closeAll();
  if (process.env.RETIS_BPF_TRACE_SHUTDOWN) process.stderr.write(`retis-ts: ${sig}: closed ${n} BPF resources\n`);
  for (const s of SIGNALS) process.removeListener(s, signalHandlers.get(s)!);
  process.kill(process.pid, sig);
}

const signalHandlers = new Map<NodeJS.Signals, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    const n = closeAll();
    if (process.env.RETIS_BPF_TRACE_SHUTDOWN) process.stderr.write(`retis-ts: exit: closed ${n} BPF resources\n`);
  });
  for (const s of SIGNALS) process.on(s, signalHandlers.get(s)!);
}

export function track(c: Closable, rank: number): void {
  install();
  open.set(c, rank);
}

export function untrack(c: Closable): void {
  open.delete(c);
}

/** Close every tracked resource (readers first, objects last). Errors are reported, not thrown. */
export function closeAll(): number {
  const list = [...open.entries()].sort((a, b) => a[1] - b[1]).map(([c]) => c);
  for (const c of list) {
    try {
      c.close();
    } catch (e) {
      process.stderr.write(`retis-ts: error while closing a BPF resource: ${e instanceof Error ? e.message : String(e)}\n`);
    }
    open.delete(c);
  }
  return list.length;
}

/** Number of tracked open resources (tests use it to prove cleanup). */
export function openResourceCount(): number {
  return open.size;
}
