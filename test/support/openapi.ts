/**
 * Checking HTTP answers against an OpenAPI 3.1 document (the API's own,
 * src/api/openapi.ts): find the operation by method and path template,
 * the response by status code, and validate the JSON body with Ajv's JSON
 * Schema 2020-12 dialect (OpenAPI 3.1's) and ajv-formats, as test/x-spec.ts
 * does for X's 3.0 documents. An undocumented status or path is an error.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

interface Doc {
  paths: Record<string, Record<string, unknown>>;
}

const pointer = (parts: readonly string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export interface ApiContract {
  /** What is wrong with this answer under the document (empty: nothing). `path` is the raw request path, still URL-encoded. */
  check(method: string, path: string, status: number, contentType: string | undefined, body: unknown): string[];
}

export function apiContract(doc: object): ApiContract {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema(doc, 'api');
  const { paths } = doc as Doc;
  const templates = Object.keys(paths).map((t) => ({
    template: t,
    // A path parameter is one raw segment: an encoded '/' (%2F) stays inside it.
    re: new RegExp(`^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));
  const compiled = new Map<string, ValidateFunction>();
  const validatorFor = (parts: string[]) => {
    const at = `api#/${pointer(parts)}`;
    let v = compiled.get(at);
    if (!v) compiled.set(at, (v = ajv.compile({ $ref: at })));
    return v;
  };
  const resolve = (node: unknown): Record<string, unknown> | undefined => {
    const r = node as { $ref?: string } | undefined;
    if (!r?.$ref) return r as Record<string, unknown> | undefined;
    let cur: unknown = doc;
    for (const p of r.$ref.replace(/^#\//, '').split('/')) cur = (cur as Record<string, unknown>)[p.replace(/~1/g, '/').replace(/~0/g, '~')];
    return cur as Record<string, unknown>;
  };

  return {
    check(method, rawPath, status, contentType, body) {
      const path = rawPath.split('?')[0]!;
      const m = templates.find((t) => t.re.test(path));
      if (!m) return [`${method} ${path}: no such path in the document`];
      const op = paths[m.template]![method.toLowerCase()] as { responses?: Record<string, unknown> } | undefined;
      if (!op) return [`${method} ${m.template}: no such operation in the document`];
      const code = String(status);
      const responseKey = op.responses?.[code] !== undefined ? code : op.responses?.['default'] !== undefined ? 'default' : undefined;
      if (!responseKey) return [`${method} ${m.template} ${status}: status not documented`];
      const response = resolve(op.responses![responseKey]) as { content?: Record<string, unknown> };
      if (!response.content) return body === undefined || body === '' ? [] : [`${method} ${m.template} ${status}: a body where the document has none`];
      if (!contentType?.startsWith('application/json'))
        return [`${method} ${m.template} ${status}: content type ${contentType ?? '(none)'}, not application/json`];
      // The schema as the document holds it, referenced by pointer so its $refs resolve inside the document.
      const origin = (op.responses![responseKey] as { $ref?: string }).$ref?.replace(/^#\//, '').split('/') ?? [
        'paths',
        m.template,
        method.toLowerCase(),
        'responses',
        responseKey,
      ];
      const validate = validatorFor([...origin.map((p) => p.replace(/~1/g, '/')), 'content', 'application/json', 'schema']);
      if (validate(body)) return [];
      return (validate.errors ?? []).map(
        (e: ErrorObject) => `${method} ${m.template} ${status}: ${e.instancePath || '(body)'} ${e.message} ${JSON.stringify(e.params)}`,
      );
    },
  };
}
