/** A chart's place on a page: a labelled figure that status.js fills from the `chart-<id>` data. */
import { html, type Html } from '../html.ts';

export function chart(id: string, title: string, description: string): Html {
  return html`<figure class="chart" aria-labelledby="chart-${id}-t" aria-describedby="chart-${id}-d">
<figcaption><span id="chart-${id}-t">${title}</span> <span class="muted" id="chart-${id}-d">${description}</span></figcaption>
<div class="plot" data-chart="${id}" role="img" aria-label="${title}: ${description}"><p class="muted nojs">The plot needs JavaScript; the figures above and the JSON API carry the same numbers.</p></div>
</figure>`;
}
