/**
 * Errors about input files are data: the file, the line (1-based, when known) and what
 * is wrong. The CLI renders them as `FILE:LINE: message`.
 */
export class InputError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly detail: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${detail}`);
    this.name = 'InputError';
  }
}
