/**
 * Versions written into every capture. RETIS_VERSION is what the startup event's
 * `retis_version` holds: the Retis file-format version our events follow (1.7, compat level V2),
 * with our own version as semver build metadata. Retis and retis-query cut the version at the
 * first '-' or '+', so both read it as 1.7.0; a '+' (not '-') keeps it from sorting before 1.7.0
 * under strict semver, as a pre-release would.
 */
export const RETIS_TS_VERSION = '0.1.0'; // keep in sync with package.json (tests/capture/cli.test.ts checks)
export const RETIS_FORMAT_VERSION = '1.7.0';
export const RETIS_VERSION = `v${RETIS_FORMAT_VERSION}+retis-ts.${RETIS_TS_VERSION}`;
