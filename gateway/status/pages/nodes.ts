/** `/nodes` and `/nodes/<id>`: every node's standing, and one node's history, from the same views as `/v1/nodes`. */

import { REPUTATION_WEIGHTS, type ReputationParts } from '../../../domain/reputation.ts';
import type { PublicNode } from '../../node-views.ts';
import { formatBytes, formatInt, formatMaybe, formatPercent, html, isoTime, jsonData, type Html } from '../html.ts';
import { chart } from './charts.ts';
import { type NodeHistoryPoint } from '../../../store/index.ts';

export function hardwareText(n: PublicNode): string {
  const h = n.hardware;
  if (!h) return 'not reported (offline)';
  const devices = h.devices.length ? h.devices.join(', ') : h.backend === 'cpu' ? 'CPU' : 'unnamed device';
  return `${h.backend.toUpperCase()} · ${devices} · ${formatBytes(h.memory_bytes)}`;
}

const stateBadge = (n: PublicNode) => html`<span class="state state-${n.state}" data-test="state">${n.state}</span>`;

export function nodesTable(nodes: PublicNode[], caption: string): Html {
  return html`<div class="scroll" tabindex="0" role="region" aria-label="${caption}">
<table class="nodes">
<caption>${caption}</caption>
<thead><tr><th scope="col">Node</th><th scope="col">Operator</th><th scope="col">Hardware (as reported)</th><th scope="col">Models</th><th scope="col">State</th><th scope="col">Live</th><th scope="col">Reputation</th><th scope="col">Uptime</th><th scope="col">Served</th><th scope="col">Checks passed / failed</th></tr></thead>
<tbody>${nodes.map(
    (n) => html`<tr data-node="${n.id}"><th scope="row"><a href="/nodes/${n.id}">${n.id}</a></th><td><a class="addr" href="/operators/${n.operator}">${n.operator}</a></td><td>${hardwareText(n)}</td><td>${n.models.join(', ')}</td><td>${stateBadge(n)}</td><td>${n.live ? 'live' : 'offline'}</td><td>${n.reputation.toFixed(3)}</td><td>${formatPercent(n.uptime)}</td><td data-test="served">${formatInt(n.requests_served)}</td><td>${formatInt(n.verification_passes)} / ${formatInt(n.verification_failures)}</td></tr>`,
  )}</tbody>
</table>
</div>`;
}

export function nodesPage(nodes: PublicNode[], model: string | undefined, limit: number): Html {
  const live = nodes.filter((n) => n.live).length;
  return html`<h1>Nodes${model ? html` serving <code>${model}</code>` : ''}</h1>
<div data-region="nodes">
<p>${formatInt(nodes.length)} nodes${nodes.length >= limit ? ` (the first ${formatInt(limit)} by reputation)` : ''}, ${formatInt(live)} live now. Best reputation first. Hardware is what each node says of itself, not a measurement.</p>
${nodesTable(nodes, 'Every node, best reputation first')}
</div>`;
}

export interface VerdictRow {
  at: number;
  status: string;
}

export function nodePage(n: PublicNode, parts: ReputationParts | undefined, history: NodeHistoryPoint[], checks: VerdictRow[], window: { fromMs: number; toMs: number }): Html {
  const t = history.map((p) => p.at.getTime() / 1000);
  const xRange = [window.fromMs / 1000, window.toMs / 1000];
  return html`<h1>Node <code>${n.id}</code></h1>
<div data-region="node">
<dl class="facts">
<div><dt>Operator</dt><dd><a class="addr" href="/operators/${n.operator}">${n.operator}</a></dd></div>
<div><dt>State</dt><dd>${stateBadge(n)} · ${n.live ? 'live' : 'offline'}</dd></div>
<div><dt>Hardware (as reported by the node)</dt><dd data-test="hardware">${hardwareText(n)}</dd></div>
<div><dt>Models</dt><dd>${n.models.join(', ')}</dd></div>
<div><dt>Reputation</dt><dd>${n.reputation.toFixed(4)}</dd></div>
<div><dt>Uptime</dt><dd>${formatPercent(n.uptime)}</dd></div>
<div><dt>Requests served / failed</dt><dd><span data-test="served">${formatInt(n.requests_served)}</span> / ${formatInt(n.failures)}</dd></div>
<div><dt>Spot checks passed / failed</dt><dd>${formatInt(n.verification_passes)} / ${formatInt(n.verification_failures)}</dd></div>
<div><dt>Time to first token (average)</dt><dd>${formatMaybe(n.time_to_first_token_ms, 'ms')}</dd></div>
<div><dt>Tokens per second (average)</dt><dd>${formatMaybe(n.tokens_per_second, 'tokens/s', 1)}</dd></div>
</dl>
${parts ? reputationTable(parts) : ''}
<section aria-labelledby="checks-h">
<h2 id="checks-h">Last spot checks</h2>
${checks.length
    ? html`<div class="scroll" tabindex="0" role="region" aria-labelledby="checks-h"><table><thead><tr><th scope="col">When</th><th scope="col">Verdict</th></tr></thead>
<tbody>${checks.map((c) => html`<tr><td><time datetime="${isoTime(c.at)}">${isoTime(c.at)}</time></td><td>${c.status}</td></tr>`)}</tbody></table></div>`
    : html`<p>No spot check of this node's answers has finished yet.</p>`}
</section>
</div>
<section aria-labelledby="history-h" data-region="history">
<h2 id="history-h">Over time</h2>
<p>One point per 5 minutes in which the node's standing changed, last 48 hours (${formatInt(history.length)} points).</p>
<div class="charts">
${chart('reputation', 'Reputation', 'The node’s reputation, 0 to 1')}
${chart('throughput', 'Tokens per second', 'The node’s average generation speed')}
</div>
${jsonData('chart-reputation', { x: t, xRange, series: [{ label: 'reputation', values: history.map((p) => p.reputation) }] })}
${jsonData('chart-throughput', { x: t, xRange, series: [{ label: 'tokens/s', values: history.map((p) => p.tokensPerSecond) }] })}
</section>`;
}

function reputationTable(parts: ReputationParts): Html {
  const rows = Object.entries(REPUTATION_WEIGHTS) as [keyof ReputationParts, number][];
  return html`<section aria-labelledby="rep-h">
<h2 id="rep-h">Reputation, part by part</h2>
<div class="scroll" tabindex="0" role="region" aria-labelledby="rep-h"><table><thead><tr><th scope="col">Part</th><th scope="col">Score (0–1)</th><th scope="col">Weight</th><th scope="col">Contribution</th></tr></thead>
<tbody>${rows.map(([name, w]) => html`<tr><th scope="row">${name}</th><td>${parts[name].toFixed(3)}</td><td>${w}</td><td>${(parts[name] * w).toFixed(3)}</td></tr>`)}</tbody></table></div>
<p class="muted">Performance compares the node with its peers’ medians when its actor last scored it; it is read back from the stored reputation.</p>
</section>`;
}
