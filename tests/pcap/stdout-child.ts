/**
 * Child process for the stdout test: writes a fixed small capture to fd 1 with
 * PcapngWriter, then the same capture to the file given as argv[2] for comparison.
 */
import { PcapngWriter, type PcapngOutput } from '../../analyze/pcap/pcapng-writer.ts';

function write(out: PcapngOutput): void {
  // A small buffer so the pipe sees several writes (and possibly EAGAIN) before close.
  const w = new PcapngWriter(out, { bufferSize: 4096 });
  const id = w.addInterface({ name: 'stdout0', tsresol: 9, snaplen: 0xffff });
  const data = new Uint8Array(200).map((_, i) => i);
  for (let i = 0; i < 5000; i++) w.writePacket(id, 1_700_000_000_000_000_000n + BigInt(i), data, 200, { comment: `pkt ${i}` });
  w.close();
}

const file = process.argv[2];
if (file === undefined) throw new Error('usage: stdout-child.ts FILE');
write('stdout');
write({ path: file });
