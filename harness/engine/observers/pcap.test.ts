import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checkCaptureDir, countPackets } from './pcap.js';

/** A pcap file (LINKTYPE_LINUX_SLL2) holding IPv4 packets between the given address pairs. */
function pcap(pairs: [number[], number[]][], opts: { truncateLast?: boolean } = {}): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(256, 16);
  header.writeUInt32LE(276, 20);
  const records = pairs.map(([src, dst]) => {
    const data = Buffer.alloc(20 + 40);
    data.writeUInt16BE(0x0800, 0); // SLL2 protocol type: IPv4
    data[20] = 0x45; // IPv4, IHL 5
    data.writeUInt16BE(40, 22); // total length
    data[29] = 6; // TCP
    Buffer.from(src).copy(data, 20 + 12);
    Buffer.from(dst).copy(data, 20 + 16);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(data.length, 8);
    rec.writeUInt32LE(data.length, 12);
    return Buffer.concat([rec, data]);
  });
  const all = Buffer.concat([header, ...records]);
  return opts.truncateLast ? all.subarray(0, all.length - 10) : all;
}

describe('countPackets', () => {
  const veth: [number[], number[]] = [[198, 18, 0, 2], [198, 18, 0, 1]];
  const lo: [number[], number[]] = [[127, 0, 0, 1], [127, 0, 0, 1]];

  test('counts every IP packet, and leaves out loopback (the capture marker) when asked', () => {
    const buf = pcap([lo, lo, veth, veth, veth]);
    expect(countPackets(buf)).toBe(5);
    expect(countPackets(buf, { excludeLoopback: true })).toBe(3);
  });

  test('an empty file (header only) and a truncated last record', () => {
    expect(countPackets(pcap([]))).toBe(0);
    expect(countPackets(Buffer.alloc(0))).toBe(0);
    expect(countPackets(pcap([veth, veth], { truncateLast: true }))).toBe(1);
  });
});

describe('checkCaptureDir', () => {
  test('refuses pseudo file systems, files and empty names, naming --pcap', async () => {
    await expect(checkCaptureDir('/proc/x')).rejects.toThrow(/--pcap: .*proc, a pseudo file system/);
    await expect(checkCaptureDir('/sys/kernel/x')).rejects.toThrow(/sysfs/);
    await expect(checkCaptureDir('')).rejects.toThrow(/--pcap/);
    const dir = await mkdtemp(join(tmpdir(), 'harness-pcapdir-'));
    try {
      await writeFile(join(dir, 'f'), '');
      await expect(checkCaptureDir(join(dir, 'f'))).rejects.toThrow(/is not a directory/);
      await expect(checkCaptureDir(join(dir, 'f', 'sub'))).rejects.toThrow(/--pcap: .*not a directory/);
      // A missing directory under a writable one is fine (created when the run starts), and nothing is made now.
      await expect(checkCaptureDir(join(dir, 'new', 'deeper'))).resolves.toBe(join(dir, 'new', 'deeper'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
