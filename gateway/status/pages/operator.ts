/** `/operators/<address>`: an operator's nodes and GBT, from the same computation as `GET /v1/rewards/<operator>`. */
import type { PublicNode } from '../../node-views.ts';
import type { RewardsView } from '../../rewards-view.ts';
import { formatGbt, formatInt, html, type Html } from '../html.ts';
import { nodesTable } from './nodes.ts';

export function operatorPage(rewards: RewardsView, nodes: PublicNode[], gatewayOrigin: string): Html {
  const command = `npx gitblock-node rewards claim --gateway ${gatewayOrigin} --key-file <the key file of ${rewards.operator}>`;
  return html`<h1>Operator <code class="addr">${rewards.operator}</code></h1>
<div data-region="operator">
<section aria-labelledby="gbt-h">
<h2 id="gbt-h">GBT</h2>
<dl class="tiles">
<div><dt>Accrued, not yet settled</dt><dd data-test="accrued">${formatGbt(rewards.accrued.amount)}</dd></div>
<div><dt>Accruing requests</dt><dd data-test="accrued-requests">${formatInt(rewards.accrued.requests)}</dd></div>
<div><dt>Settling (root not yet on chain)</dt><dd>${formatGbt(rewards.settling)}</dd></div>
<div><dt>Settled</dt><dd>${formatGbt(rewards.settled)}</dd></div>
<div><dt>Claimable</dt><dd>${formatGbt(rewards.claimable)}</dd></div>
<div><dt>Claimed</dt><dd>${formatGbt(rewards.claimed)}</dd></div>
</dl>
${rewards.epochs.length
    ? html`<div class="scroll" tabindex="0" role="region" aria-label="GBT per epoch"><table><caption>Per epoch</caption><thead><tr><th scope="col">Epoch</th><th scope="col">Accrued</th><th scope="col">Paid</th><th scope="col">Status</th></tr></thead>
<tbody>${rewards.epochs.map((e) => html`<tr><th scope="row">${e.epoch}</th><td>${formatGbt(e.accrued)}</td><td>${formatGbt(e.amount)}</td><td>${e.status}</td></tr>`)}</tbody></table></div>`
    : html`<p>No epoch with a payment for this operator has been settled yet.</p>`}
<h3>Claim</h3>
<p>Claimable epochs are claimed on chain with the operator’s own key (it pays the gas); the command skips epochs already claimed:</p>
<pre><code>${command}</code></pre>
</section>
<section aria-labelledby="onodes-h">
<h2 id="onodes-h">Nodes</h2>
${nodes.length ? nodesTable(nodes, `Nodes of ${rewards.operator}`) : html`<p>No node of this operator has been seen.</p>`}
</section>
</div>`;
}
