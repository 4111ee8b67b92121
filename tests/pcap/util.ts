/** Test helpers of the pcap export: shared readers from tests/util. */
export { parseJsonExact, readEvents as loadEvents, type Json } from '../util/retis-json.ts';
export { optionText, readPcapng, utf8, type Block, type RawBlock, type RawOption } from '../util/pcapng.ts';
