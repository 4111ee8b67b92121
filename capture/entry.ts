/** Entry point of the bundled binary (dist/retis-capture.mjs): run the CLI, pass its exit status. */
import { main } from './cli.ts';

process.exitCode = await main(process.argv.slice(2));
