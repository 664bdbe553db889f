/**
 * The fake's HTTP framing: reading request bodies, and `Reply`, which writes
 * one answer the way X does (JSON, gzip when asked for, the rate and cap
 * headers) or the ways X goes wrong on the wire: a body cut mid-stream, a
 * connection reset, no answer at all.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';

import { invalidRequest, payloadTooLarge, type HttpProblem } from './problems.js';

const MAX_BODY_BYTES = 1 << 20;
// Errors too come as this type, as X sends them (not `application/problem+json`).
const JSON_TYPE = 'application/json; charset=utf-8';

export class Reply {
  private headers: Record<string, string>;
  private readonly compressed: boolean;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    /** Where the status sent is noted (the request log's record). */
    private readonly record: { status?: number },
    /** Sockets left hanging, so closing the server can end them. */
    private readonly hanging: Set<Socket>,
    opts: { gzip: boolean; headers: Record<string, string> },
  ) {
    this.headers = opts.headers;
    this.compressed = opts.gzip && /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''));
  }

  /** Headers for the answer, added to (or overriding) the ones so far. */
  addHeaders(headers: Record<string, string>): void {
    this.headers = { ...this.headers, ...headers };
  }

  send(status: number, body: unknown): void {
    this.res.end(this.head(status, body));
  }

  /** Announce the whole body, deliver half of it (of the gzip stream when compressed), then drop the connection. */
  sendCut(status: number, body: unknown): void {
    const payload = this.head(status, body);
    this.res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => this.req.socket.destroy());
  }

  problem(p: HttpProblem): void {
    this.send(p.status, p.body());
  }

  /** Never answer. Keep the socket so close() can end it; the client only gets out via its own deadline. */
  hang(): void {
    const socket = this.req.socket;
    this.hanging.add(socket);
    socket.once('close', () => this.hanging.delete(socket));
  }

  reset(): void {
    this.req.socket.destroy();
  }

  /** Write the status line and headers; returns the payload to send. */
  private head(status: number, body: unknown): Buffer {
    this.record.status = status;
    const json = Buffer.from(JSON.stringify(body));
    const payload = this.compressed ? gzipSync(json) : json;
    this.res.writeHead(status, {
      ...this.headers,
      'content-type': JSON_TYPE,
      ...(this.compressed && { 'content-encoding': 'gzip' }),
      'content-length': String(payload.length),
    });
    return payload;
  }
}

/** A bug in a handler: a bare 500 if nothing was sent yet, else drop the connection. */
export function failRequest(res: http.ServerResponse, err: unknown): void {
  if (!res.headersSent && !res.destroyed) {
    res.writeHead(500, { 'content-type': JSON_TYPE });
    res.end(JSON.stringify({ title: 'Internal Server Error', detail: String(err), type: 'about:blank', status: 500 }));
  } else {
    res.destroy();
  }
}

/** OAuth token requests come form-encoded (twitter-api-v2 may also send JSON). */
export async function readForm(req: http.IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks).toString('utf8');
  if (raw.trim().startsWith('{')) {
    try {
      return Object.fromEntries(Object.entries(JSON.parse(raw) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

/** A request body of at most `max` bytes (a media segment: a few MB). */
export async function readBody(req: http.IncomingMessage, max = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > max) throw payloadTooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** A create's JSON object body (at most 1 MiB). */
export async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const raw = (await readBody(req)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = raw === '' ? {} : JSON.parse(raw);
  } catch {
    throw invalidRequest('Request body is not valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidRequest('Request body must be a JSON object.');
  return parsed as Record<string, unknown>;
}
