/** `/`: the network at a glance, from the same object `GET /v1/status` answers. */
import { html, isoTime, jsonData, shortTime, formatGbt, formatInt, type Html } from '../html.ts';
import type { NetworkStatus } from '../network.ts';
import { chart } from './charts.ts';

export function networkPage(s: NetworkStatus): Html {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const lastHour = s.series.requestsPerMinute.slice(-60);
  const ttfts = s.series.ttftMs.filter((x): x is number => x !== null);
  return html`<h1>Network</h1>
<div data-region="summary">
<section aria-labelledby="now-h">
<h2 id="now-h">Now</h2>
<dl class="tiles">
<div><dt>Live nodes</dt><dd data-test="live-nodes">${formatInt(s.nodes.live)}</dd></div>
<div><dt>Serving (routable)</dt><dd>${formatInt(s.nodes.serving)}</dd></div>
<div><dt>Live operators</dt><dd>${formatInt(s.operators.live)}</dd></div>
<div><dt>Registered nodes</dt><dd>${formatInt(s.nodes.registered)}</dd></div>
<div><dt>Suspended nodes</dt><dd data-test="suspended">${formatInt(s.nodes.suspended)}</dd></div>
<div><dt>Spot checks run</dt><dd data-test="checks-run">${formatInt(s.checks.run)}</dd></div>
<div><dt>Spot checks failed</dt><dd data-test="checks-failed">${formatInt(s.checks.failed)}</dd></div>
<div><dt>Requests, last hour</dt><dd data-test="requests-hour">${formatInt(sum(lastHour))}</dd></div>
<div><dt>GBT settled in total</dt><dd>${formatGbt(s.settled_total)}</dd></div>
</dl>
</section>
<section aria-labelledby="epoch-h">
<h2 id="epoch-h">Epoch ${s.epoch.number < 0 ? 'not started' : `${s.epoch.number} of ${s.epoch.of}`}</h2>
<dl class="tiles">
<div><dt>Settles at</dt><dd><time datetime="${isoTime(s.epoch.ends_at)}">${shortTime(s.epoch.ends_at)}</time> <span class="countdown" data-countdown="${s.epoch.ends_at}"></span></dd></div>
<div><dt>Emission this epoch</dt><dd>${formatGbt(s.epoch.emission)}</dd></div>
<div><dt>Accrued so far</dt><dd data-test="epoch-accrued">${formatGbt(s.epoch.accrued)}</dd></div>
<div><dt>Accruing requests</dt><dd>${formatInt(s.epoch.accrued_requests)}</dd></div>
</dl>
</section>
<section aria-labelledby="models-h">
<h2 id="models-h">Models</h2>
<div class="scroll" tabindex="0" role="region" aria-labelledby="models-h">
<table>
<thead><tr><th scope="col">Model</th><th scope="col">Live nodes</th><th scope="col">Free slots</th><th scope="col">Context (tokens)</th><th scope="col">Tokens/s now</th></tr></thead>
<tbody>${s.models.map(
    (m) => html`<tr><th scope="row"><a href="/nodes?model=${m.id}">${m.gitblock.name}</a> <code>${m.id}</code></th><td>${formatInt(m.gitblock.nodes)}</td><td>${formatInt(m.gitblock.free_slots)}</td><td>${formatInt(m.gitblock.max_context)}</td><td>${formatInt(m.gitblock.tokens_per_second)}</td></tr>`,
  )}</tbody>
</table>
</div>
</section>
</div>
<section aria-labelledby="traffic-h">
<h2 id="traffic-h">Traffic, last 6 hours</h2>
<p data-region="traffic-summary">Per minute, from the network's request records. ${formatInt(sum(s.series.requestsPerMinute))} requests served in 6 hours; mean time to first token ${ttfts.length ? `${Math.round(sum(ttfts) / ttfts.length)} ms` : '—'}.</p>
<div class="charts" data-region="traffic">
${chart('requests', 'Requests per minute', 'Requests each minute over the last 6 hours')}
${chart('tokens', 'Tokens per second', 'Generated tokens per second, averaged over each minute')}
${chart('ttft', 'Time to first token (ms)', 'Mean time to first token of the requests in each minute')}
${jsonData('chart-requests', { x: s.series.t, series: [{ label: 'requests/min', values: s.series.requestsPerMinute }] })}
${jsonData('chart-tokens', { x: s.series.t, series: [{ label: 'tokens/s', values: s.series.tokensPerSecond }] })}
${jsonData('chart-ttft', { x: s.series.t, series: [{ label: 'TTFT ms', values: s.series.ttftMs }] })}
</div>
</section>`;
}
