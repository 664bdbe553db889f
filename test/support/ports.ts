/** Free TCP ports on 127.0.0.1 for servers a test or benchmark starts (a redis-server, the board). */
import net from 'node:net';

const isFree = (port: number) =>
  new Promise<boolean>((done) => {
    const s = net.createServer();
    s.once('error', () => done(false));
    s.listen(port, '127.0.0.1', () => s.close(() => done(true)));
  });

/**
 * A port in [min, max) nobody listens on right now on 127.0.0.1; with
 * `alsoFree`, those offsets from it are free too (Redis Cluster's bus port
 * is port + 10000, so keep max + 10000 below 65536).
 */
export async function freePort(opts: { min?: number; max?: number; alsoFree?: readonly number[] } = {}): Promise<number> {
  const min = opts.min ?? 20_000;
  const max = opts.max ?? 50_000;
  for (let i = 0; i < 200; i++) {
    const port = min + Math.floor(Math.random() * (max - min));
    if (!(await isFree(port))) continue;
    if (opts.alsoFree && !(await Promise.all(opts.alsoFree.map((d) => isFree(port + d)))).every(Boolean)) continue;
    return port;
  }
  throw new Error('no free port found');
}
