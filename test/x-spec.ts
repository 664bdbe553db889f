/**
 * Contract checking against X's own OpenAPI documents (shared/x-api):
 * a validator for requests and responses of the operations a spec
 * describes, and a recording proxy that captures exactly what goes over the
 * wire between the real twitter-api-v2 client and the fake X.
 *
 * Validation is Ajv (draft-07 semantics, which is what OpenAPI 3.0's schema
 * dialect is based on: `$ref` siblings ignored, `nullable` understood by Ajv)
 * with ajv-formats for `date-time`, `uri`, `int32`, ... The whole spec is
 * added as one schema and fragments are referenced as
 * `spec#/components/schemas/X`, so every `$ref` resolves against X's document
 * as published. `strict: false` only lets Ajv skip the OpenAPI annotations it
 * does not know (`example`, `externalDocs`, ...). OpenAPI's `discriminator`
 * is not a JSON-schema keyword; it is implemented below (Ajv's own support
 * needs `oneOf` and no `mapping`, and 2.159's `Problem` has a mapping and no
 * `oneOf`), so a problem body is checked against the subtype its `type`
 * names, and a `type` the spec does not map is an error.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/** X's OpenAPI documents: `shared/x-api/` beside the project's checkout (as CI lays it out). */
export const SPEC_DIR = process.env.X_SPEC_DIR ?? join(import.meta.dirname, '..', '..', 'shared', 'x-api');

/* ------------------------------------------------------------------ spec */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type SchemaObject = Record<string, unknown>;

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: SchemaObject;
  style?: string;
  explode?: boolean;
}

interface MediaType {
  schema?: SchemaObject;
}
interface Response {
  content?: Record<string, MediaType>;
}
interface Operation {
  operationId?: string;
  parameters?: (Parameter | { $ref: string })[];
  requestBody?: { required?: boolean; content?: Record<string, MediaType> } | { $ref: string };
  responses?: Record<string, Response | { $ref: string }>;
}

export interface OperationMatch {
  method: string;
  /** The path template, e.g. `/2/users/{id}/tweets`. */
  template: string;
  operationId: string;
  operation: Operation;
  pathParams: Record<string, string>;
}

export interface WireRequest {
  method: string;
  path: string;
  /** Decoded query pairs in order (a name may repeat). */
  query: [string, string][];
  contentType?: string;
  /** Raw request body ('' for none). */
  rawBody: string;
}

export interface WireResponse {
  status: number;
  contentType?: string;
  contentEncoding?: string;
  /** The body after content-encoding was undone. */
  text: string;
}

export interface Exchange {
  seq: number;
  request: WireRequest;
  /** Undefined when the connection failed before a full answer arrived. */
  response?: WireResponse;
  error?: string;
}

export interface CheckResult {
  /** `POST /2/tweets (createPosts) → 201` */
  label: string;
  operationId?: string;
  status?: number;
  requestIssues: string[];
  responseIssues: string[];
  /** Places where the spec was ambiguous and a documented reading was used. */
  notes: string[];
  /** The schema the response body was checked against (e.g. `#/components/schemas/TweetCreateResponse`). */
  responseSchema?: string;
  /**
   * JSON pointers of response fields no schema of the answer declares. Not
   * an error in OpenAPI (no `additionalProperties: false`), but how a
   * renamed field of a drifting fake shows up; the test decides.
   */
  undeclared: string[];
}

const MAX_ERRORS_SHOWN = 6;
const mediaTypeOf = (ct: string | undefined) => ct?.split(';')[0]?.trim().toLowerCase();
const isRef = (x: unknown): x is { $ref: string } => typeof x === 'object' && x !== null && typeof (x as { $ref?: unknown }).$ref === 'string';

export class XSpec {
  readonly version: string;
  readonly doc: { info: { version: string }; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, SchemaObject> } };
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly templates: { template: string; regex: RegExp; names: string[]; literalSegments: number }[];
  /** Ajv's warnings (unknown formats in parts of the spec we may not use). */
  readonly warnings: string[] = [];

  constructor(file: string) {
    this.doc = JSON.parse(readFileSync(file, 'utf8')) as XSpec['doc'];
    this.version = this.doc.info.version;
    this.ajv = new Ajv({
      strict: false,
      allErrors: true,
      logger: { log: () => undefined, warn: (...a: unknown[]) => void this.warnings.push(a.join(' ')), error: (...a: unknown[]) => console.error(...a) },
    });
    addFormats.default(this.ajv);
    // 2.159's media metadata (ContentExpiration, Sticker) says `format: long`, not OpenAPI's int64: a whole number.
    this.ajv.addFormat('long', { type: 'number', validate: (n: number) => Number.isInteger(n) });
    this.addDiscriminator();
    this.ajv.addSchema(this.doc as unknown as AnySchema, 'spec');
    this.templates = Object.keys(this.doc.paths).map((template) => {
      const names: string[] = [];
      const source = template
        .split('/')
        .map((seg) => {
          const m = /^\{([^}]+)\}$/.exec(seg);
          if (m?.[1]) {
            names.push(m[1]);
            return '([^/]+)';
          }
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('/');
      return { template, regex: new RegExp(`^${source}$`), names, literalSegments: template.split('/').length - names.length };
    });
  }

  /** Resolve a local `$ref` (`#/components/...`) in the spec document. */
  resolve<T = unknown>(ref: string): T {
    if (!ref.startsWith('#/')) throw new Error(`only local refs are supported, got ${ref}`);
    let node: unknown = this.doc;
    for (const raw of ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      node = (node as Record<string, unknown> | undefined)?.[key];
      if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    }
    return node as T;
  }

  private deref<T>(x: T | { $ref: string }): T {
    let cur: unknown = x;
    for (let i = 0; i < 20 && isRef(cur); i++) cur = this.resolve(cur.$ref);
    return cur as T;
  }

  /** The operation for a method and a concrete path; literal segments win over templated ones (`/2/users/me` over `/2/users/{id}`). */
  findOperation(method: string, path: string): OperationMatch | undefined {
    const m = method.toLowerCase();
    const candidates = this.templates
      .filter((t) => this.doc.paths[t.template]?.[m] && t.regex.test(path))
      .sort((a, b) => b.literalSegments - a.literalSegments);
    const best = candidates[0];
    if (!best) return undefined;
    const match = best.regex.exec(path)!;
    const pathParams: Record<string, string> = {};
    best.names.forEach((n, i) => {
      pathParams[n] = decodeURIComponent(match[i + 1] ?? '');
    });
    const operation = this.doc.paths[best.template]![m]!;
    return { method: method.toUpperCase(), template: best.template, operationId: operation.operationId ?? `${m} ${best.template}`, operation, pathParams };
  }

  /** Path-level and operation-level parameters, refs resolved, operation ones overriding. */
  parametersOf(match: OperationMatch): Parameter[] {
    const pathItem = this.doc.paths[match.template] as unknown as { parameters?: (Parameter | { $ref: string })[] };
    const all = [...(pathItem.parameters ?? []), ...(match.operation.parameters ?? [])].map((p) => this.deref<Parameter>(p));
    const byKey = new Map<string, Parameter>();
    for (const p of all) byKey.set(`${p.in}:${p.name}`, p);
    return [...byKey.values()];
  }

  /** A validator for a schema object taken from the spec (its local refs point into the spec). */
  private validatorFor(key: string, schema: SchemaObject): ValidateFunction {
    let v = this.compiled.get(key);
    if (!v) {
      v = isRef(schema) && Object.keys(schema).length === 1 ? this.ajv.getSchema(`spec${schema.$ref}`) : this.ajv.compile(rebase(schema) as AnySchema);
      if (!v) throw new Error(`cannot compile schema for ${key}`);
      this.compiled.set(key, v);
    }
    return v;
  }

  /** Validate a value against `#/components/schemas/Name` (or any local ref). Returns readable errors, [] when valid. */
  validateRef(ref: string, value: unknown): string[] {
    return this.validateSchema(ref, { $ref: ref }, value);
  }

  private validateSchema(key: string, schema: SchemaObject, value: unknown): string[] {
    const v = this.validatorFor(key, schema);
    return v(value) ? [] : formatErrors(v.errors ?? []);
  }

  checkRequest(req: WireRequest): { match?: OperationMatch; issues: string[] } {
    const match = this.findOperation(req.method, req.path);
    if (!match) return { issues: [`no operation ${req.method} ${req.path} in X API ${this.version}`] };
    const issues: string[] = [];
    const params = this.parametersOf(match);
    const op = match.operationId;

    for (const p of params.filter((x) => x.in === 'path')) {
      const raw = match.pathParams[p.name];
      if (raw === undefined) {
        issues.push(`path parameter ${p.name} missing`);
        continue;
      }
      const errs = this.validateSchema(`${op}:path:${p.name}`, p.schema ?? {}, this.coerce(p, [raw]));
      for (const e of errs) issues.push(`path parameter ${p.name}=${JSON.stringify(raw)}: ${e}`);
    }

    const queryParams = new Map(params.filter((x) => x.in === 'query').map((x) => [x.name, x]));
    const seen = new Map<string, string[]>();
    for (const [name, value] of req.query) seen.set(name, [...(seen.get(name) ?? []), value]);
    for (const [name, values] of seen) {
      const p = queryParams.get(name);
      if (!p) {
        issues.push(`query parameter ${name} is not a parameter of ${op} (known: ${[...queryParams.keys()].join(', ')})`);
        continue;
      }
      const schema = this.deref<SchemaObject>(p.schema ?? {});
      const explode = p.explode ?? (p.style ?? 'form') === 'form';
      if (values.length > 1 && !(schema.type === 'array' && explode)) issues.push(`query parameter ${name} given ${values.length} times`);
      const errs = this.validateSchema(`${op}:query:${name}`, p.schema ?? {}, this.coerce(p, values));
      for (const e of errs) issues.push(`query parameter ${name}=${JSON.stringify(values.join(','))}: ${e}`);
    }
    for (const p of queryParams.values()) if (p.required && !seen.has(p.name)) issues.push(`required query parameter ${p.name} missing`);

    const body = match.operation.requestBody ? this.deref(match.operation.requestBody) : undefined;
    if (!body) {
      if (req.rawBody.trim() !== '') issues.push(`${op} takes no request body, got ${req.rawBody.length} bytes`);
    } else if (req.rawBody.trim() === '') {
      if (body.required) issues.push('request body is required');
    } else {
      const mt = mediaTypeOf(req.contentType);
      const media = mt ? body.content?.[mt] : undefined;
      if (!media) {
        issues.push(`request content-type ${req.contentType ?? '(none)'} is not one of ${Object.keys(body.content ?? {}).join(', ')}`);
      } else {
        const parsed = parseJson(req.rawBody);
        if (!parsed.ok) issues.push(`request body is not JSON: ${parsed.error}`);
        else
          for (const e of this.validateSchema(`${op}:request:${mt}`, media.schema ?? {}, parsed.value))
            issues.push(`request body${refNote(media.schema)}: ${e}`);
      }
    }
    return { match, issues };
  }

  checkResponse(match: OperationMatch, res: WireResponse): { issues: string[]; notes: string[]; schema?: string; undeclared: string[] } {
    const r = this.checkResponseBody(match, res);
    const parsed = r.schema && r.issues.length === 0 ? parseJson(res.text) : undefined;
    return { ...r, undeclared: parsed?.ok && r.schema ? this.undeclaredFields({ $ref: r.schema }, parsed.value) : [] };
  }

  private checkResponseBody(match: OperationMatch, res: WireResponse): { issues: string[]; notes: string[]; schema?: string } {
    const responses = match.operation.responses ?? {};
    const key = [String(res.status), `${String(res.status).charAt(0)}XX`, 'default'].find((k) => responses[k] !== undefined);
    if (!key) return { issues: [`status ${res.status} is not a documented response (documented: ${Object.keys(responses).join(', ')})`], notes: [] };
    const declared = this.deref<Response>(responses[key]!);
    const content = declared.content ?? {};
    const mt = mediaTypeOf(res.contentType);
    if (Object.keys(content).length === 0) {
      return { issues: res.text.trim() === '' ? [] : [`response ${key} declares no body, got ${res.text.length} bytes`], notes: [] };
    }
    const parsed = parseJson(res.text);
    if (!parsed.ok) return { issues: [`response body is not JSON (${res.contentType ?? 'no content-type'}): ${parsed.error}`], notes: [] };
    const media = mt ? content[mt] : undefined;
    if (!media)
      return {
        issues: [`response content-type ${res.contentType ?? '(none)'} is not declared for ${key} (declared: ${Object.keys(content).join(', ')})`],
        notes: [],
      };
    const schemaKey = `${match.operationId}:response:${key}:${mt}`;
    const errs = this.validateSchema(schemaKey, media.schema ?? {}, parsed.value);
    if (errs.length === 0) return { issues: [], notes: [], schema: refName(media.schema) };

    // Spec ambiguity: every operation's `default` error answer declares
    // `application/json` → `Error` ({code, message}, the v1.1 shape) and
    // `application/problem+json` → `Problem`. X itself sends problem bodies
    // labelled `application/json; charset=utf-8` on many errors (e.g. a 403
    // "duplicate content" answer of POST /2/tweets, api-version 2.62, seen
    // in plhery/node-twitter-api-v2#469), while 401s come as
    // `application/problem+json`. So an error body under application/json
    // must be a valid Error or a valid Problem (discriminated subtype
    // included); it is never let through unchecked.
    const problem = content['application/problem+json'];
    if (res.status >= 400 && mt === 'application/json' && problem) {
      const perrs = this.validateSchema(`${match.operationId}:response:${key}:application/problem+json`, problem.schema ?? {}, parsed.value);
      if (perrs.length === 0) {
        return {
          issues: [],
          notes: [
            `problem body sent as ${res.contentType}: validated as ${refName(problem.schema) ?? 'problem+json'} (the spec declares Error for application/json)`,
          ],
          schema: refName(problem.schema),
        };
      }
      return {
        issues: [
          ...errs.map((e) => `response body as ${refName(media.schema) ?? mt}: ${e}`),
          ...perrs.map((e) => `response body as ${refName(problem.schema) ?? 'application/problem+json'}: ${e}`),
        ],
        notes: [],
      };
    }
    return { issues: errs.map((e) => `response body${refNote(media.schema)}: ${e}`), notes: [] };
  }

  /** Validate one recorded exchange: request against the operation's parameters and body, response against its documented answer. */
  check(ex: Exchange): CheckResult {
    const { match, issues: requestIssues } = this.checkRequest(ex.request);
    const status = ex.response?.status;
    const label = `${ex.request.method} ${match?.template ?? ex.request.path} (${match?.operationId ?? 'no operation'}) → ${status ?? ex.error ?? 'no response'}`;
    const out: CheckResult = { label, operationId: match?.operationId, status, requestIssues, responseIssues: [], notes: [], undeclared: [] };
    if (!match) return out;
    if (!ex.response) {
      out.responseIssues.push(`no complete response: ${ex.error ?? 'unknown'}`);
      return out;
    }
    const r = this.checkResponse(match, ex.response);
    out.responseIssues = r.issues;
    out.notes = r.notes;
    out.responseSchema = r.schema;
    out.undeclared = r.undeclared;
    return out;
  }

  /**
   * Fields of `value` that `schema` declares nowhere: the union of
   * `properties` over `$ref`s, `allOf`/`anyOf`/`oneOf` branches and the
   * discriminator's mapped subtype. Objects with `additionalProperties` or
   * without any `properties` (free-form) are open.
   */
  undeclaredFields(schema: SchemaObject, value: unknown): string[] {
    const out: string[] = [];
    const visit = (schemas: SchemaObject[], v: unknown, at: string): void => {
      const flat = this.flatten(schemas, v);
      if (Array.isArray(v)) {
        const items = flat.map((s) => s.items as SchemaObject | undefined).filter((s): s is SchemaObject => s !== undefined);
        if (items.length > 0) v.forEach((x, i) => visit(items, x, `${at}/${i}`));
        return;
      }
      if (v === null || typeof v !== 'object') return;
      const props = flat.map((s) => s.properties as Record<string, SchemaObject> | undefined).filter((p): p is Record<string, SchemaObject> => p !== undefined);
      const extra = flat.map((s) => s.additionalProperties).filter((a) => a !== undefined && a !== false);
      if (props.length === 0 && extra.length === 0) return;
      for (const [key, child] of Object.entries(v)) {
        const declared = props.map((p) => p[key]).filter((s): s is SchemaObject => s !== undefined);
        if (declared.length > 0) visit(declared, child, `${at}/${key}`);
        else if (extra.some((a) => a === true)) continue;
        else if (extra.length > 0) visit(extra as SchemaObject[], child, `${at}/${key}`);
        else out.push(`${at}/${key}`);
      }
    };
    visit([schema], value, '');
    return out;
  }

  private flatten(schemas: SchemaObject[], v: unknown): SchemaObject[] {
    const out: SchemaObject[] = [];
    const refs = new Set<string>();
    const stack = [...schemas];
    while (stack.length > 0) {
      let s = stack.pop()!;
      if (isRef(s)) {
        if (refs.has(s.$ref)) continue;
        refs.add(s.$ref);
        s = this.resolve<SchemaObject>(s.$ref);
        stack.push(s);
        continue;
      }
      if (out.includes(s)) continue;
      out.push(s);
      for (const k of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[k])) stack.push(...(s[k] as SchemaObject[]));
      const d = s.discriminator as { propertyName: string; mapping?: Record<string, string> } | undefined;
      const tag = d && v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[d.propertyName] : undefined;
      const target = typeof tag === 'string' ? d?.mapping?.[tag] : undefined;
      if (target) stack.push({ $ref: target });
    }
    return out;
  }

  /** Turn raw query/path strings into the JSON value the parameter's schema describes (style form/simple). */
  private coerce(p: Parameter, values: string[]): unknown {
    const schema = this.deref<SchemaObject>(p.schema ?? {});
    if (schema.type === 'array') {
      const explode = p.explode ?? (p.style ?? (p.in === 'query' ? 'form' : 'simple')) === 'form';
      const items = this.deref<SchemaObject>((schema.items as SchemaObject | undefined) ?? {});
      const raw = explode && p.in === 'query' ? values : values.flatMap((v) => v.split(','));
      return raw.map((v) => scalar(items, v));
    }
    return scalar(schema, values[0] ?? '');
  }

  private addDiscriminator(): void {
    const active = new WeakMap<object, Set<string>>();
    const schemas = () => this.doc.components.schemas;
    const getSchema = (ref: string) => this.ajv.getSchema(`spec${ref}`);
    type Discriminate = ((
      schema: { propertyName: string; mapping?: Record<string, string> },
      data: unknown,
      parent?: unknown,
      cxt?: { instancePath: string },
    ) => boolean) & {
      errors?: ErrorObject[] | null;
    };
    const discriminator: Discriminate = (schema, data, _parent, cxt) => {
      discriminator.errors = null;
      if (data === null || typeof data !== 'object' || Array.isArray(data)) return true; // `type` reports this
      const at = cxt?.instancePath ?? '';
      const value = (data as Record<string, unknown>)[schema.propertyName];
      const fail = (message: string, params: Record<string, unknown> = {}): boolean => {
        discriminator.errors = [{ instancePath: at, schemaPath: '#/discriminator', keyword: 'discriminator', params, message }];
        return false;
      };
      if (typeof value !== 'string') return fail(`must have string discriminator property "${schema.propertyName}"`);
      // OpenAPI 3.0: an explicit mapping first, else the value names a schema.
      const target = schema.mapping?.[value] ?? (schemas()[value] ? `#/components/schemas/${value}` : undefined);
      if (!target) return fail(`${schema.propertyName} "${value}" is not a value the spec maps (${Object.keys(schema.mapping ?? {}).join(', ')})`, { value });
      const busy = active.get(data) ?? new Set<string>();
      if (busy.has(target)) return true; // the subtype's allOf refers back to the base schema
      busy.add(target);
      active.set(data, busy);
      try {
        const v = getSchema(target);
        if (!v) return fail(`discriminator target ${target} does not exist`);
        if (v(data)) return true;
        const name = target.split('/').pop();
        discriminator.errors = (v.errors ?? []).map((e) => ({ ...e, instancePath: at + e.instancePath, message: `${e.message ?? 'invalid'} (as ${name})` }));
        return false;
      } finally {
        busy.delete(target);
      }
    };
    this.ajv.addKeyword({ keyword: 'discriminator', schemaType: 'object', errors: true, validate: discriminator as never });
  }
}

function scalar(schema: SchemaObject, raw: string): unknown {
  if ((schema.type === 'integer' || schema.type === 'number') && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(raw)) return Number(raw);
  if (schema.type === 'boolean' && (raw === 'true' || raw === 'false')) return raw === 'true';
  return raw;
}

/** A deep copy whose local refs (`#/...`) point into the spec added as `spec`. */
function rebase(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (schema === null || typeof schema !== 'object') return schema;
  return Object.fromEntries(
    Object.entries(schema as Record<string, unknown>).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `spec${v}` : rebase(v)]),
  );
}

const refName = (schema: SchemaObject | undefined) => (isRef(schema) ? schema.$ref : undefined);
const refNote = (schema: SchemaObject | undefined) => (isRef(schema) ? ` (${schema.$ref})` : '');

export function formatErrors(errors: readonly ErrorObject[]): string[] {
  const lines = errors.map((e) => {
    const where = e.instancePath === '' ? '(root)' : e.instancePath;
    const p = e.params as Record<string, unknown>;
    let extra = '';
    if (e.keyword === 'additionalProperties') extra = `: ${String(p.additionalProperty)}`;
    else if (e.keyword === 'enum') extra = `: ${JSON.stringify(p.allowedValues)}`;
    else if (e.keyword === 'const') extra = `: ${JSON.stringify(p.allowedValue)}`;
    return `${where} ${e.message ?? e.keyword}${extra}`;
  });
  const unique = [...new Set(lines)];
  return unique.length > MAX_ERRORS_SHOWN ? [...unique.slice(0, MAX_ERRORS_SHOWN), `(+${unique.length - MAX_ERRORS_SHOWN} more)`] : unique;
}

function parseJson(text: string): { ok: true; value: Json } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as Json };
  } catch (err) {
    return { ok: false, error: `${(err as Error).message}; starts ${JSON.stringify(text.slice(0, 60))}` };
  }
}

export function loadSpec(version: '2.159' | '2.167'): XSpec {
  return new XSpec(`${SPEC_DIR}/openapi-${version}.json`);
}

/** One readable block per failing exchange: operation, status, then the first issues. */
export function describeFailures(results: readonly CheckResult[]): string {
  return results
    .filter((r) => r.requestIssues.length > 0 || r.responseIssues.length > 0)
    .map((r) => [r.label, ...r.requestIssues.map((i) => `  request: ${i}`), ...r.responseIssues.map((i) => `  response: ${i}`)].join('\n'))
    .join('\n');
}

/* ------------------------------------------------------- recording proxy */

export interface RecordingProxy extends EventEmitter {
  url: string;
  readonly exchanges: Exchange[];
  close(): Promise<void>;
}

function decode(buf: Buffer, encoding: string | undefined): string {
  const steps = (encoding ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s && s !== 'identity')
    .reverse();
  let out = buf;
  for (const step of steps) {
    if (step === 'gzip' || step === 'x-gzip') out = gunzipSync(out);
    else if (step === 'br') out = brotliDecompressSync(out);
    else if (step === 'deflate') out = inflateSync(out);
    else throw new Error(`unknown content-encoding ${step}`);
  }
  return out.toString('utf8');
}

/**
 * A plain node:http proxy on 127.0.0.1 that forwards every request to
 * `target` byte for byte and records both sides. The exchange is recorded
 * before the answer is passed on, so once the client's call settles its
 * exchange is in `exchanges` (and was emitted as 'exchange').
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const exchanges: Exchange[] = [];
  const emitter = new EventEmitter() as RecordingProxy;
  let seq = 0;
  const record = (ex: Exchange) => {
    exchanges.push(ex);
    emitter.emit('exchange', ex);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const request: WireRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: [...url.searchParams.entries()],
        contentType: req.headers['content-type'],
        rawBody: body.toString('utf8'),
      };
      const ex: Exchange = { seq: ++seq, request };
      const headers = { ...req.headers, host: upstream.host };
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (upRes) => {
        const parts: Buffer[] = [];
        upRes.on('data', (c: Buffer) => parts.push(c));
        upRes.on('error', () => undefined);
        upRes.on('close', () => {
          const raw = Buffer.concat(parts);
          if (!upRes.complete) {
            ex.error = `upstream closed after ${raw.length} bytes of a ${upRes.statusCode} answer`;
            record(ex);
            res.destroy();
            return;
          }
          const contentEncoding = upRes.headers['content-encoding'];
          let text: string;
          try {
            text = decode(raw, contentEncoding);
          } catch (err) {
            text = `<undecodable ${contentEncoding} body: ${(err as Error).message}>`;
          }
          ex.response = { status: upRes.statusCode ?? 0, contentType: upRes.headers['content-type'], contentEncoding, text };
          record(ex);
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.end(raw);
        });
      });
      up.on('error', (err) => {
        if (ex.response || ex.error) return;
        ex.error = `upstream error: ${err.message}`;
        record(ex);
        res.destroy();
      });
      up.end(body);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(emitter, {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
