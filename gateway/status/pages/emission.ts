/** `/emission`: the 208-week schedule of the node-rewards pool, with the week we are in. */
import { EMISSION_EPOCHS, GBT, cumulativeEmission, epochEmission } from '../../../domain/emission.ts';
import { formatGbt, html, jsonData, type Html } from '../html.ts';
import { chart } from './charts.ts';

export function emissionPage(current: number): Html {
  const weeks = Array.from({ length: EMISSION_EPOCHS }, (_, k) => k);
  // Floats only for drawing; every figure printed is exact.
  const gbt = (units: bigint) => Number(units / 10n ** 14n) / Number(GBT / 10n ** 14n);
  const inSchedule = current >= 0 && current < EMISSION_EPOCHS;
  return html`<h1>Emission</h1>
<p>The 400,000,000 GBT node-rewards pool is paid out over ${EMISSION_EPOCHS} weekly epochs, 1% less each week.
${inSchedule ? html`We are in <strong data-test="current-epoch">week ${current}</strong>, which emits ${formatGbt(epochEmission(current))}; ${formatGbt(cumulativeEmission(current))} will have been emitted by its end.` : current < 0 ? 'The first epoch has not started.' : 'The schedule is over.'}</p>
<div class="charts">${chart('emission', 'GBT emitted per week', `The ${EMISSION_EPOCHS}-week schedule; the marked point is the current week`)}</div>
${jsonData('chart-emission', { x: weeks, xIsWeek: true, mark: inSchedule ? current : null, series: [{ label: 'GBT/week', values: weeks.map((k) => gbt(epochEmission(k))) }] })}
<details>
<summary>Every week, exact</summary>
<div class="scroll" tabindex="0" role="region" aria-label="Emission per week"><table><thead><tr><th scope="col">Week</th><th scope="col">Emission</th><th scope="col">Emitted by its end</th></tr></thead>
<tbody>${weeks.map((k) => html`<tr${k === current ? html` class="current" aria-current="date"` : ''}><th scope="row">${k}</th><td>${formatGbt(epochEmission(k))}</td><td>${formatGbt(cumulativeEmission(k))}</td></tr>`)}</tbody></table></div>
</details>`;
}
