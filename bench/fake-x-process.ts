/**
 * The fake X in a process of its own, for chaos runs: the workers talk to it
 * over HTTP like to the real X, and its event loop is not shared with the
 * process that kills them. A second, tiny HTTP server (the control port)
 * hands out the ground truth and turns the knobs:
 *
 *   GET  /created         every item X really created (CreatedItem[], as sent)
 *   GET  /faults          faults injected so far, by kind
 *   GET  /requests        write/read requests by route and status
 *   POST /lag             {"ms": n}      timeline lag from now on
 *   POST /fault-rate      {"rate": r}    share of write calls that get a fault
 *   POST /duplicate-check {"on": bool}   X's duplicate-content 403
 *   POST /shutdown                       close and exit
 *
 *   node dist/bench/fake-x-process.js CONFIG.json
 *
 * CONFIG: {"accounts": FakeAccount[], "faultRate", "faultKinds"?, "seed",
 * "lagMs", "duplicateCheck", "rateLimitResetSec"?, "controlToken"}. Both
 * servers listen on 127.0.0.1 only; the control port wants the header
 * `x-control-token`. Prints one JSON line `{"url", "controlUrl"}` when ready,
 * and exits when its stdin closes (the parent died), so it never outlives
 * the run that started it.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { type FakeAccount, type FaultKind, startFakeX } from '../src/fake-x/index.js';

export interface FakeXProcessConfig {
  accounts: FakeAccount[];
  faultRate: number;
  faultKinds?: FaultKind[];
  seed: number;
  lagMs: number;
  duplicateCheck: boolean;
  rateLimitResetSec?: number;
  controlToken: string;
  /** X as it really is: lookups that fail (cut gzip bodies, hangs), restricted replies, users who refuse DMs. */
  lookupFaultRate?: number;
  replyRestriction?: boolean;
  refusesDms?: string[];
}

const MAX_CONTROL_BODY = 64 * 1024;

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) {
    console.error('usage: node dist/bench/fake-x-process.js CONFIG.json');
    process.exit(2);
  }
  const config = JSON.parse(await readFile(path, 'utf8')) as FakeXProcessConfig;
  const fake = await startFakeX({
    accounts: config.accounts,
    faultRate: config.faultRate,
    ...(config.faultKinds && { faultKinds: config.faultKinds }),
    seed: config.seed,
    timelineLagMs: config.lagMs,
    duplicateContentCheck: config.duplicateCheck,
    rateLimitResetSec: config.rateLimitResetSec ?? 2,
    lookupFaultRate: config.lookupFaultRate ?? 0,
    replyRestriction: config.replyRestriction ?? false,
    refusesDms: config.refusesDms ?? [],
  });

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    control.closeAllConnections();
    control.close();
    // Exit whatever closing does: a fake that cannot close must not outlive its run.
    await fake.close().catch((err: Error) => console.error(`fake X close failed: ${err.message}`));
    process.exit(code);
  };

  const control = http.createServer((req, res) => {
    const reply = (status: number, body: unknown) => {
      const payload = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) });
      res.end(payload);
    };
    if (req.headers['x-control-token'] !== config.controlToken) return reply(401, { error: 'bad control token' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_CONTROL_BODY) chunks.push(c);
    });
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        const raw = Buffer.concat(chunks).toString('utf8');
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      } catch {
        return reply(400, { error: 'body must be JSON' });
      }
      try {
        const route = `${req.method} ${req.url}`;
        switch (route) {
          case 'GET /created':
            return reply(200, fake.created());
          case 'GET /faults':
            return reply(200, fake.faultsInjected());
          case 'GET /requests': {
            const counts: Record<string, number> = {};
            for (const r of fake.requests()) {
              const k = `${r.method} ${r.path.replace(/\/\d{3,}(?=\/|$)/g, '/:id')} ${r.status ?? '-'}`;
              counts[k] = (counts[k] ?? 0) + 1;
            }
            return reply(200, counts);
          }
          case 'POST /lag':
            fake.setTimelineLag(Number(body.ms));
            return reply(200, { ok: true });
          case 'POST /fault-rate':
            fake.setFaultRate(Number(body.rate));
            return reply(200, { ok: true });
          case 'POST /duplicate-check':
            fake.setDuplicateContentCheck(body.on === true);
            return reply(200, { ok: true });
          case 'POST /shutdown':
            reply(200, { ok: true });
            void stop(0);
            return;
          default:
            return reply(404, { error: `no route ${route}` });
        }
      } catch (err) {
        return reply(400, { error: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const addr = control.address();
  if (addr === null || typeof addr === 'string') throw new Error('control server: unexpected address');

  process.on('SIGTERM', () => void stop(0));
  process.on('SIGINT', () => void stop(0));
  // The parent holds our stdin; when it dies, so do we.
  process.stdin.on('end', () => void stop(0));
  process.stdin.on('error', () => void stop(0));
  process.stdin.resume();

  console.log(JSON.stringify({ url: fake.url, controlUrl: `http://127.0.0.1:${addr.port}` }));
}

main().catch((err: unknown) => {
  console.error(`fake-x-process: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
});
