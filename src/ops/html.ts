/**
 * HTML for the board's own pages, escaped by construction: every value
 * interpolated into `html`…`` is escaped unless it is already Html (another
 * `html` fragment, or `raw` for markup the code itself wrote). Post texts,
 * reasons and ids are user or X data: they only ever go in as values.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escape for text and for quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

/** A value as HTML: Html as is, arrays joined, null/undefined/false as nothing, anything else escaped. */
function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Markup written by this code, never data. */
export function raw(markup: string): Html {
  return new Html(markup);
}

/**
 * User text shown as typed (line breaks kept), in a `.verbatim` element
 * built here rather than in a template, so no formatter can add whitespace
 * around it.
 */
export function verbatim(text: string, tag: 'div' | 'span' = 'div', className = ''): Html {
  return new Html(`<${tag} class="verbatim${className ? ` ${escapeHtml(className)}` : ''}">${escapeHtml(text)}</${tag}>`);
}

/** A path with each segment URL-encoded (slot ids may hold '/', '?', '#'). */
export function pathOf(...segments: string[]): string {
  return segments.map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}

/** A query string from the given (non-empty) parameters, with its '?'; '' when there are none. */
export function queryOf(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
