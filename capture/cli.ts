/**
 * `retis-capture`: attach the collectors' probes, write the events (see HELP in options.ts).
 * bin/retis-capture.js runs it through tsx; `npm run bundle:capture` makes dist/retis-capture.mjs.
 *
 * Exit status: 0 (or --cmd's status), 1 when the capture fails (one line naming the cause and
 * what to do), 2 on usage errors.
 */
import { BpfError } from '../bpf/errors.ts';
import { BtfError } from '../bpf/btf.ts';
import { EnvError } from '../bpf/env.ts';
import { NativeMissingError } from '../bpf/native.ts';
import { CollectorError } from './collectors.ts';
import { HELP, PROG, UsageError, parseCaptureArgs } from './options.ts';
import { applyProfiles, ProfileError } from './profiles.ts';
import { ProbePlanError } from './probes.ts';
import { CaptureError, runCapture } from './session.ts';
import { RETIS_TS_VERSION, RETIS_VERSION } from './version.ts';

/** Errors that are the user's or the system's, reported as one message (exit 1). */
function isCaptureFailure(e: unknown): e is Error {
  return (
    e instanceof CaptureError ||
    e instanceof BpfError ||
    e instanceof EnvError ||
    e instanceof NativeMissingError ||
    e instanceof ProbePlanError ||
    e instanceof CollectorError ||
    e instanceof ProfileError ||
    e instanceof BtfError
  );
}

export async function main(argv: string[]): Promise<number> {
  const err = (s: string): void => void process.stderr.write(s);
  let opts;
  try {
    opts = parseCaptureArgs(argv);
    if (opts.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (opts.version) {
      process.stdout.write(`${PROG} ${RETIS_TS_VERSION} (events in Retis ${RETIS_VERSION} format)\n`);
      return 0;
    }
    if (opts.profiles.length > 0) opts = applyProfiles(opts, argv);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${PROG}: ${e.message}\nTry '${PROG} --help'.\n`);
      return 2;
    }
    if (e instanceof ProfileError) {
      err(`${PROG}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  try {
    return await runCapture(opts, { cmdline: [PROG, ...argv].join(' '), stderr: err, stdoutFd: 1 });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${PROG}: ${e.message}\nTry '${PROG} --help'.\n`);
      return 2;
    }
    if (isCaptureFailure(e)) {
      err(`${PROG}: ${e.message}\n`);
      return 1;
    }
    err(`${PROG}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
