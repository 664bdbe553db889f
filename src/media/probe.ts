import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { HEAD_BYTES, MAX_BYTES, type MediaProbe } from '../domain/media.js';

/**
 * The edge of the media checks: what a path holds, for the pure checks in
 * domain/media.ts. The content hash is computed streaming (a 512 MB video
 * is never held in memory); a file over the largest size X takes is not
 * hashed at all, its size alone refuses it.
 */
export async function probeFile(path: string): Promise<MediaProbe> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return { ok: false, reason: 'is not a regular file' };
    await access(path, constants.R_OK);
    const fh = await open(path, 'r');
    try {
      const head = Buffer.alloc(Math.min(HEAD_BYTES, st.size));
      if (head.length > 0) await fh.read(head, 0, head.length, 0);
      if (st.size > MAX_BYTES.video) return { ok: true, bytes: st.size, head, sha256: '' };
      const hash = createHash('sha256');
      for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false, start: 0 })) hash.update(chunk as Buffer);
      return { ok: true, bytes: st.size, head, sha256: hash.digest('hex') };
    } finally {
      await fh.close();
    }
  } catch (err) {
    return { ok: false, reason: ioReason(err) };
  }
}

/** An IO error in words, with its code: `cannot be read: ENOENT (no such file)`. */
export function ioReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'a parent is not a directory',
  };
  return typeof code === 'string' ? `cannot be read: ${code}${words[code] ? ` (${words[code]})` : ''}` : `cannot be read: ${String(err)}`;
}

/** Every media path a batch of raw requests names (a request's own and its parts'). */
export function mediaPathsOf(raw: readonly unknown[]): string[] {
  const paths = new Set<string>();
  const add = (media: unknown) => {
    if (!Array.isArray(media)) return;
    for (const m of media) {
      const p = (typeof m === 'object' && m !== null ? m : {}) as { path?: unknown };
      if (typeof p.path === 'string' && p.path.startsWith('/')) paths.add(p.path);
    }
  };
  for (const item of raw) {
    const r = (typeof item === 'object' && item !== null ? item : {}) as { media?: unknown; parts?: unknown };
    add(r.media);
    if (Array.isArray(r.parts)) for (const part of r.parts) add((part as { media?: unknown } | null)?.media);
  }
  return [...paths];
}

/** Probe many paths, a few at a time (hashing is disk-bound). */
export async function probeAll(paths: readonly string[], concurrency = 4): Promise<Map<string, MediaProbe>> {
  const out = new Map<string, MediaProbe>();
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const p = paths[next++]!;
      out.set(p, await probeFile(p));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, worker));
  return out;
}
