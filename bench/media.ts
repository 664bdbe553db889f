/**
 * Media: a large video through the real upload path — memory, throughput
 * and Redis cost.
 *
 *   npm run build && node --expose-gc dist/bench/media.js [--mb 200] [--rounds 3] [--report FILE]
 *
 * A publish worker (createPublishWorker with the real TwitterXPort over
 * twitter-api-v2) runs in this process; the fake X runs in a child process
 * (this file with `--serve-fake`), so its buffers are not in this process's
 * RSS. The mp4 (ffmpeg's clip grown with a `free` box) is enqueued as a
 * media post by path; the worker streams it in 4 MiB appends (initialize,
 * append × n, finalize; the fake processes at once) and creates the post.
 *
 * - RSS: sampled every 20 ms from enqueue to `sent`; growth = peak minus the
 *   baseline taken (after `gc()`) once the worker is warm, before the first
 *   upload. Target (issue #17): at most 64 MB.
 * - Throughput: the worker's upload time (the `media-upload` audit event's
 *   `ms`) against a raw `fetch` doing the same initialize, appends and
 *   finalize to the same fake X, in the same round, alternating which goes
 *   first. Two raw variants, the faster is the baseline: each append a 4 MiB
 *   slice of the file streamed from disk in a FormData (`fs.openAsBlob`), or
 *   read into one multipart Buffer sent whole. Ratio = raw time / xactly
 *   time (1.0: as fast as raw). Target: at least 0.8.
 * - Redis round trips per media post: client side (every command this
 *   process writes, a pipeline once) from enqueue's return to `sent`, with a
 *   text-only post measured the same way for comparison.
 *
 * Checks (exit 1): every post `sent` at attempt 1, on X once with exactly
 * one medium, every upload told in the trail with the file's byte count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openAsBlob, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createProducer, createPublishWorker, openLedger } from '../src/app.js';
import { keyId } from '../src/domain/key.js';
import type { PostRecord } from '../src/domain/state.js';
import { startFakeX } from '../src/fake-x/index.js';
import { createLogger } from '../src/log.js';
import { SEGMENT_BYTES } from '../src/x/upload.js';
import { staticCredentialStore } from '../src/x/credentials.js';
import { TwitterXPort } from '../src/x/twitter.js';
import { ACCOUNTS, FAKE_ACCOUNTS, SECRETS } from '../test/support/accounts.js';
import { hasFfmpeg, mediaDir, mp4 } from '../test/support/media.js';
import { dropPrefix, newRedis } from '../test/support/redis.js';
import { commandLine, f0, f2, type Figure, intOption, mb, mdTable, nullStream, rand, type Row, run, secs, textTable, verdict, writeReport } from './common.js';
import { installCommandCounter, isLedgerLabel } from './redis-stats.js';

const TARGET_RSS_GROWTH = 64 * 1_048_576;
const TARGET_RATIO = 0.8;
const ACCOUNT = 'globex';

if (process.argv.includes('--serve-fake')) {
  // The child: the fake X alone; exits when the parent closes its stdin.
  const fake = await startFakeX({ accounts: FAKE_ACCOUNTS, mediaProcessingMs: 0 });
  console.log(JSON.stringify({ url: fake.url }));
  process.stdin.on('end', () => void fake.close().finally(() => process.exit(0)));
  process.stdin.resume();
} else {
  run(main);
}

interface Round {
  round: number;
  first: 'raw' | 'xactly';
  /** The faster of the two raw variants. */
  rawMs: number;
  rawStreamMs: number;
  rawBufferMs: number;
  xactlyUploadMs: number;
  endToEndMs: number;
  peakRss: number;
  roundTrips: number;
  ledgerRoundTrips: number;
}

function parse() {
  const { values } = parseArgs({
    options: {
      mb: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      report: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node --expose-gc dist/bench/media.js [--mb 200] [--rounds 3] [--report FILE]');
    process.exit(0);
  }
  return { MB: intOption('mb', values.mb, 1), ROUNDS: intOption('rounds', values.rounds, 1), report: values.report };
}

async function startFakeChild(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve-fake'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => reject(new Error(`fake X child exited with ${code}`)));
  });
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

/**
 * The raw baseline: X's chunked upload with nothing but fetch. `stream`:
 * each append a slice of the file streamed from disk (`fs.openAsBlob`) in a
 * FormData; `buffer`: each 4 MiB segment read into one multipart Buffer and
 * sent whole (what the worker does, without twitter-api-v2).
 */
async function rawUpload(url: string, path: string, bytes: number, how: 'stream' | 'buffer'): Promise<number> {
  const auth = { authorization: `Bearer ${SECRETS.globexToken}` };
  const blob = await openAsBlob(path);
  const fh = await open(path, 'r');
  try {
    const t0 = performance.now();
    const init = await fetch(`${url}/2/media/upload/initialize`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ media_category: 'tweet_video', media_type: 'video/mp4', total_bytes: bytes }),
    });
    const id = ((await init.json()) as { data?: { id?: string } }).data?.id;
    if (!id) throw new Error(`raw initialize: HTTP ${init.status}`);
    const boundary = `----rawbench${rand()}`;
    for (let i = 0, at = 0; at < bytes; i++, at += SEGMENT_BYTES) {
      const length = Math.min(SEGMENT_BYTES, bytes - at);
      let body: FormData | Buffer;
      let headers: Record<string, string> = auth;
      if (how === 'stream') {
        body = new FormData();
        body.set('segment_index', String(i));
        body.set('media', blob.slice(at, at + length), 'segment');
      } else {
        const head = Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="segment_index"\r\n\r\n${i}\r\n--${boundary}\r\nContent-Disposition: form-data; name="media"\r\nContent-Type: application/octet-stream\r\n\r\n`,
        );
        const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
        body = Buffer.allocUnsafe(head.length + length + tail.length);
        head.copy(body, 0);
        await fh.read(body, head.length, length, at);
        tail.copy(body, head.length + length);
        headers = { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` };
      }
      const res = await fetch(`${url}/2/media/upload/${id}/append`, { method: 'POST', headers, body });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`raw append ${i}: HTTP ${res.status}`);
    }
    const fin = await fetch(`${url}/2/media/upload/${id}/finalize`, { method: 'POST', headers: auth });
    const state = ((await fin.json()) as { data?: { processing_info?: { state?: string } } }).data?.processing_info?.state;
    if (!fin.ok || (state !== undefined && state !== 'succeeded')) throw new Error(`raw finalize: HTTP ${fin.status}, ${state}`);
    return performance.now() - t0;
  } finally {
    await fh.close();
  }
}

/** Both raw variants, in turn; the faster is the baseline. */
async function raw(url: string, path: string, bytes: number): Promise<{ stream: number; buffer: number }> {
  const stream = await rawUpload(url, path, bytes, 'stream');
  const buffer = await rawUpload(url, path, bytes, 'buffer');
  return { stream, buffer };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<number> {
  const { MB, ROUNDS, report } = parse();
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') {
    console.error('media.js needs the garbage collector exposed: node --expose-gc dist/bench/media.js');
    return 2;
  }
  if (!hasFfmpeg()) {
    console.error('media.js needs ffmpeg for the video (Debian: apt-get install ffmpeg)');
    return 2;
  }
  const started = Date.now();
  const dir = mediaDir();
  const video = `${dir}/bench.mp4`;
  mp4(video, MB * 1_048_576);
  const bytes = statSync(video).size;
  const counter = installCommandCounter();
  const prefix = `xb-media-${rand()}`;
  const admin = newRedis();
  counter.ignore(admin);
  const producerRedis = newRedis();
  const workerRedis = newRedis();
  const { url, child } = await startFakeChild();
  const x = new TwitterXPort({ credentials: staticCredentialStore(ACCOUNTS), baseUrl: url, timeoutMs: 30_000 });
  const errors: string[] = [];
  try {
    const producer = createProducer({ connection: producerRedis, prefix, retentionMs: 3_600_000 });
    await producer.queue.waitUntilReady();
    const ledger = producer.ledger;
    // Polled on the admin connection, which the counter ignores.
    const reader = openLedger(admin, { prefix, retentionMs: 3_600_000 });
    const worker = createPublishWorker({
      connection: workerRedis,
      prefix,
      retentionMs: 3_600_000,
      x,
      logger: createLogger({ level: 'info' }, nullStream()),
      concurrency: 4,
      leaseMs: 60_000,
      settleWindowMs: 120_000,
    });
    worker.on('error', (err) => console.error(`  worker error: ${err.message}`));
    await worker.waitUntilReady();

    /** Enqueue one post, then count this process's Redis round trips and sample RSS until it is final. */
    const publish = async (slotId: string, media: boolean) => {
      const request = { slotId, postId: 'm', accountId: ACCOUNT, kind: 'post', text: `media bench ${slotId}`, ...(media && { media: [{ path: video }] }) };
      const [res] = await producer.enqueueMany([request]);
      if (res?.status !== 'queued') throw new Error(`${slotId}: enqueue ${res?.status}`);
      let peak = process.memoryUsage().rss;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      counter.begin();
      const t0 = performance.now();
      let r: PostRecord | undefined;
      const id = keyId({ slotId, postId: 'm' });
      try {
        for (;;) {
          r = await reader.get(id);
          if (r && (r.state === 'sent' || r.state === 'failed')) break;
          if (performance.now() - t0 > 300_000) throw new Error(`${slotId}: not final after 300 s (${r?.state})`);
          await new Promise((done) => setTimeout(done, 20));
        }
      } finally {
        clearInterval(sampler);
      }
      const ms = performance.now() - t0;
      const counts = counter.end();
      peak = Math.max(peak, process.memoryUsage().rss);
      if (r.state !== 'sent' || r.attempt !== 1) errors.push(`${slotId}: ${r.state} at attempt ${r.attempt}${r.detail ? ` (${r.detail})` : ''}`);
      const trail = await ledger.auditTrail(id);
      const ups = trail.filter((e) => e.event === 'media-upload');
      if (media && (ups.length !== 1 || ups[0]!.bytes !== bytes))
        errors.push(`${slotId}: uploads in the trail ${JSON.stringify(ups.map((u) => u.bytes))}, expected [${bytes}]`);
      const ledgerTrips = [...counts.byCommand].filter(([k]) => isLedgerLabel(k)).reduce((a, [, n]) => a + n, 0);
      return {
        ms,
        uploadMs: Number(ups[0]?.ms ?? 0),
        peak,
        roundTrips: counts.roundTrips,
        ledgerRoundTrips: ledgerTrips,
        byCommand: counts.byCommand,
        tweetId: r.tweetId,
      };
    };

    console.log(
      `media: a ${mb(bytes)} mp4 through the worker's chunked upload (${Math.ceil(bytes / SEGMENT_BYTES)} appends of 4 MiB) to the fake X, ${ROUNDS} round(s)`,
    );
    // Warm-up: a text post and one raw upload (connections, JIT, the fake's first segments), then the baseline.
    await publish('warm-text', false);
    await raw(url, video, bytes);
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    const baseline = process.memoryUsage().rss;
    console.log(`  baseline rss after warm-up: ${mb(baseline)}`);
    const text = await publish('text', false);

    const rounds: Round[] = [];
    const ids: string[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const first = i % 2 === 1 ? 'raw' : 'xactly';
      let r = { stream: 0, buffer: 0 };
      if (first === 'raw') r = await raw(url, video, bytes);
      const p = await publish(`video-${i}`, true);
      if (first === 'xactly') r = await raw(url, video, bytes);
      const rawMs = Math.min(r.stream, r.buffer);
      if (p.tweetId) ids.push(p.tweetId);
      rounds.push({
        round: i,
        first,
        rawMs,
        rawStreamMs: r.stream,
        rawBufferMs: r.buffer,
        xactlyUploadMs: p.uploadMs,
        endToEndMs: p.ms,
        peakRss: p.peak,
        roundTrips: p.roundTrips,
        ledgerRoundTrips: p.ledgerRoundTrips,
      });
      console.log(
        `  round ${i} (${first} first): raw ${secs(r.stream)} streamed / ${secs(r.buffer)} buffered, xactly upload ${secs(p.uploadMs)} (ratio ${f2(rawMs / p.uploadMs)}), enqueue->sent ${secs(p.ms)}, peak rss +${mb(p.peak - baseline)}, ${p.roundTrips} round trips`,
      );
      if (i === ROUNDS) console.log(`  round trips by command: ${[...p.byCommand].map(([k, v]) => `${k} ${v}`).join(', ')}`);
      gc();
    }
    await worker.close();

    // On X once each, with exactly one medium.
    const page = await x.timeline(ACCOUNT, { maxResults: 100 });
    for (const [i, id] of ids.entries()) {
      const shown = page.items.filter((t) => t.id === id);
      if (shown.length !== 1 || shown[0]!.mediaKeys?.length !== 1)
        errors.push(`video-${i + 1}: on X ${shown.length} time(s) with ${shown[0]?.mediaKeys?.length ?? 0} media`);
    }
    const videoPosts = page.items.filter((t) => t.text.startsWith('media bench video-'));
    if (videoPosts.length !== ROUNDS) errors.push(`X shows ${videoPosts.length} video posts for ${ROUNDS} keys`);
    await producer.close();

    const growth = Math.max(...rounds.map((r) => r.peakRss)) - baseline;
    const ratios = rounds.map((r) => r.rawMs / r.xactlyUploadMs);
    const ratio = median(ratios);
    const trips = median(rounds.map((r) => r.roundTrips));
    const ledgerTrips = median(rounds.map((r) => r.ledgerRoundTrips));
    const header = [
      'round',
      'first',
      'raw fetch: streamed',
      'buffered',
      'xactly upload',
      'ratio',
      'enqueue -> sent',
      'peak rss growth',
      'round trips',
      'of them ledger scripts',
    ];
    const rows: Row[] = rounds.map((r) => [
      String(r.round),
      r.first,
      secs(r.rawStreamMs),
      secs(r.rawBufferMs),
      secs(r.xactlyUploadMs),
      f2(r.rawMs / r.xactlyUploadMs),
      secs(r.endToEndMs),
      `+${mb(r.peakRss - baseline)}`,
      String(r.roundTrips),
      String(r.ledgerRoundTrips),
    ]);
    rows.push(['text post', '', '', '', '', '', secs(text.ms), `+${mb(text.peak - baseline)}`, String(text.roundTrips), String(text.ledgerRoundTrips)]);
    const mbps = (ms: number) => `${f0(bytes / 1_048_576 / (ms / 1000))} MB/s`;
    const verdicts = [
      `RSS growth over the baseline (${mb(baseline)}), peak of ${ROUNDS} upload(s) of ${mb(bytes)}: +${mb(growth)} (target <= 64 MB): ${verdict(growth <= TARGET_RSS_GROWTH)}`,
      `upload throughput, xactly vs raw fetch: ${f2(ratio)} (median of ${ROUNDS}; xactly ${mbps(median(rounds.map((r) => r.xactlyUploadMs)))}, raw ${mbps(median(rounds.map((r) => r.rawMs)))}; target >= ${TARGET_RATIO}): ${verdict(ratio >= TARGET_RATIO)}`,
      `Redis round trips per media post (this process, enqueue's return to sent): ${f0(trips)} (${f0(ledgerTrips)} of them ledger scripts); a text-only post: ${text.roundTrips} (${text.ledgerRoundTrips})`,
    ];
    console.log(`\n${textTable(rows, header)}\n`);
    for (const v of verdicts) console.log(v);
    if (errors.length > 0) {
      console.error('\nTHE FIGURES ABOVE DO NOT MEASURE SUCCESSFUL WORK:');
      for (const e of errors) console.error(`  ${e}`);
      return 1;
    }
    const figures: Figure[] = [
      {
        name: `media: RSS growth uploading a ${mb(bytes, 0)} video`,
        value: `+${mb(growth)}`,
        target: '<= 64 MB',
        verdict: verdict(growth <= TARGET_RSS_GROWTH),
      },
      {
        name: 'media: upload throughput vs a raw fetch of the same appends',
        value: `${f2(ratio)}×`,
        target: `>= ${TARGET_RATIO}×`,
        verdict: verdict(ratio >= TARGET_RATIO),
      },
      { name: 'media: Redis round trips per media post', value: `${f0(trips)} (text-only post: ${text.roundTrips})`, target: '', verdict: '' },
    ];
    const markdown = `## Media (\`bench/media.ts\`)

A ${mb(bytes)} mp4 (ffmpeg's clip grown with a \`free\` box) enqueued by path as a post of an OAuth 2.0
account and published by a publish worker in this process (\`createPublishWorker\`, the real
\`TwitterXPort\` over twitter-api-v2): initialize, ${Math.ceil(bytes / SEGMENT_BYTES)} appends of 4 MiB read from disk one at a
time, finalize (the fake X, in a child process of its own, processes at once), then the create.
RSS of this process is sampled every 20 ms from enqueue to \`sent\`, against a baseline taken after
\`gc()\` once the worker is warm. The raw baseline is \`fetch\` alone doing the same initialize, appends
and finalize to the same fake X, in the same round, alternating which goes first, two ways: each append
a 4 MiB slice of the file streamed from disk in a FormData (\`fs.openAsBlob\`: "streamed"), or read into
one multipart Buffer sent whole ("buffered"); the ratio is the faster raw time over xactly's upload time
(the \`media-upload\` audit event's \`ms\`). Round trips: every command this
process wrote to Redis (a pipeline once) from enqueue's return to \`sent\`, BullMQ's included.

${mdTable(rows, header)}

${verdicts.map((v) => `- ${v}`).join('\n')}
- Checks passed: every post \`sent\` at attempt 1, on X once with exactly one medium, each upload in
  its key's trail with the file's ${f0(bytes)} bytes.
`;
    await writeReport(report, { bench: 'media', title: 'Media', command: commandLine('media.js'), figures, markdown, durationMs: Date.now() - started });
    return 0;
  } finally {
    x.close();
    child.stdin?.end();
    await dropPrefix(admin, prefix);
    await Promise.all([admin.quit(), producerRedis.quit(), workerRedis.quit()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
