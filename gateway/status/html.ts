/**
 * HTML for the status pages: a tagged template that escapes every value it is given (node ids,
 * model names and hardware strings come from untrusted nodes), the page frame, and the number
 * formats the pages share.
 */
import { GBT } from '../../domain/emission.ts';

/** Markup that is already safe; everything else put into `html` is escaped. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => escapes[c]!);

type Part = Html | string | number | bigint | null | undefined | false | Part[];

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return part.map(render).join('');
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

/**
 * Data for a chart, read by status.js. `<` is escaped so no string in it can close the script
 * element; `type="application/json"` is never executed, so the page's CSP allows it.
 */
export function jsonData(id: string, value: unknown): Html {
  return new Html(`<script type="application/json" id="${escapeHtml(id)}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`);
}

const nav = [
  ['/', 'Network'],
  ['/nodes', 'Nodes'],
  ['/emission', 'Emission'],
] as const;

/** The frame every page shares: skip link, landmarks, navigation, and the script that refreshes each `data-region` live. */
export function page(options: { title: string; path: string; body: Html }): string {
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · GitBlock network</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/status/assets/uPlot.min.css">
<link rel="stylesheet" href="/status/assets/status.css">
<script defer src="/status/assets/uPlot.iife.min.js"></script>
<script defer src="/status/assets/status.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<p class="brand"><a href="/">GitBlock network</a></p>
<nav aria-label="Pages"><ul>${nav.map(([href, label]) => html`<li><a href="${href}"${isCurrent(options.path, href) ? html` aria-current="page"` : ''}>${label}</a></li>`)}</ul></nav>
</header>
<main id="main" tabindex="-1">
${options.body}
</main>
<footer><p>Public and read-only: no prompt or answer is ever shown. The same data as the JSON API: <a href="/v1/status">/v1/status</a>, <a href="/v1/nodes">/v1/nodes</a>, <a href="/openapi.json">OpenAPI</a>.</p></footer>
</body>
</html>`.value}`;
}

const isCurrent = (path: string, href: string) => (href === '/' ? path === '/' : path === href || path.startsWith(`${href}/`));

const int = new Intl.NumberFormat('en-US');
export const formatInt = (n: number) => int.format(n);

/**
 * A GBT amount in base units (decimal string) as GBT, exact in bigint: 4 decimals from 1 GBT up,
 * every significant decimal below it (one request's accrual is a tiny fraction of a GBT).
 */
export function formatGbt(baseUnits: string | bigint): string {
  const units = BigInt(baseUnits);
  const whole = units / GBT;
  const digits = (units % GBT).toString().padStart(18, '0');
  const frac = (whole > 0n ? digits.slice(0, 4) : digits).replace(/0+$/, '');
  return `${int.format(whole)}${frac ? `.${frac}` : ''} GBT`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return 'not reported';
  const gib = bytes / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(bytes / 2 ** 20)} MiB`;
}

export const formatPercent = (x: number | null) => (x === null ? '—' : `${(x * 100).toFixed(1)}%`);
export const formatMaybe = (x: number | null, unit: string, digits = 0) => (x === null ? '—' : `${x.toFixed(digits)} ${unit}`);
export const isoTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
export const shortTime = (ms: number) => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
