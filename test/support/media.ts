/**
 * Media files made by the tests themselves: a valid PNG (written with
 * node:zlib), a GIF, and an mp4 made by Debian's ffmpeg, grown to the size
 * a test needs with an ISO-BMFF `free` box (a box every player skips, so
 * the file stays a valid mp4). Shared by tests and benches.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';

export function mediaDir(): string {
  return mkdtempSync(join(tmpdir(), 'xactly-media-'));
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A valid RGB PNG of `width` × `height`. `noise`: random pixels stored
 * uncompressed (the file is then about width × height × 3 bytes, for the
 * size limits); else a gradient seeded by `seed` (small, and different per seed).
 */
export function png(width: number, height: number, opts: { seed?: number; noise?: boolean } = {}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = width * 3 + 1;
  const raw = opts.noise ? randomBytes(row * height) : Buffer.alloc(row * height);
  const seed = opts.seed ?? 0;
  for (let y = 0; y < height; y++) {
    raw[y * row] = 0; // filter: none
    if (opts.noise) continue;
    for (let x = 0; x < width; x++) {
      const i = y * row + 1 + x * 3;
      raw[i] = (x * 7 + seed * 31) & 0xff;
      raw[i + 1] = (y * 5 + seed * 17) & 0xff;
      raw[i + 2] = (x + y + seed * 13) & 0xff;
    }
  }
  const idat = deflateSync(raw, { level: opts.noise ? 0 : 6 });
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 2×2 GIF89a, two frames (an animated GIF), `seed` in its palette. */
export function gif(seed = 0): Buffer {
  const frame = Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([
    Buffer.from('GIF89a', 'ascii'),
    Buffer.from([2, 0, 2, 0, 0x80, 0, 0]),
    Buffer.from([seed & 0xff, 0, 0, 0xff, 0xff, 0xff]),
    Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0'), 0x03, 0x01, 0x00, 0x00, 0x00]),
    frame,
    frame,
    Buffer.from([0x3b]),
  ]);
}

export function hasFfmpeg(): boolean {
  try {
    execFileSync('ffmpeg', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * An mp4 of about `bytes` at `path`: a 2-second H.264 clip by ffmpeg, then a
 * `free` box of random filler up to the size (written in 4 MB pieces).
 */
export function mp4(path: string, bytes: number, seed = 0): void {
  execFileSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=s=320x240:r=25`,
      '-t',
      '2',
      '-metadata',
      `comment=seed ${seed}`,
      '-c:v',
      'libx264',
      '-pix_fmt',
      'yuv420p',
      '-y',
      path,
    ],
    { stdio: 'inherit' },
  );
  const clip = readFileSync(path);
  const pad = Math.max(0, bytes - clip.length);
  if (pad < 8) return;
  const fd = openSync(path, 'a');
  try {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(pad, 0);
    header.write('free', 4, 'ascii');
    writeSync(fd, header);
    const piece = randomBytes(4 * 1024 * 1024);
    for (let left = pad - 8; left > 0; left -= piece.length) writeSync(fd, piece, 0, Math.min(left, piece.length));
  } finally {
    closeSync(fd);
  }
}

export function writeMedia(dir: string, name: string, content: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A local https server for URL media (see startMediaServer). */
export interface MediaServer {
  /** `https://127.0.0.1:<port>` */
  readonly base: string;
  close(): Promise<void>;
}

/**
 * A real https server with a self-signed certificate (made with openssl in
 * `dir`), trusted by this test process only while it runs. It serves
 * `files` by path; `/slow.png` answers its headers and the first 16 bytes of
 * `slow`, then nothing, so only a fetch's time limit ends it; anything else
 * is a 404.
 */
export async function startMediaServer(dir: string, files: Readonly<Record<string, Buffer>>, slow: Buffer): Promise<MediaServer> {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`, '-days', '1', '-subj', '/CN=127.0.0.1'],
    { stdio: 'ignore' },
  );
  const tls = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  const server = createServer({ key: readFileSync(`${dir}/key.pem`), cert: readFileSync(`${dir}/cert.pem`) }, (req, res) => {
    const file = files[req.url ?? ''];
    if (file) return res.end(file);
    if (req.url === '/slow.png') return res.writeHead(200, { 'content-type': 'image/png' }).write(slow.subarray(0, 16));
    res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    base: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      if (tls === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = tls;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
