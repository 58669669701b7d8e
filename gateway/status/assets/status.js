// The status pages' one script: draws the charts (uPlot, served by the gateway), counts down to
// settlement, and every few seconds re-reads the page and swaps in each `data-region`, so the
// numbers stay live with one server-side rendering of them. Without it the pages read the same.
(() => {
  'use strict';
  const refreshMs = 5000;
  const charts = new Map();

  function chartData(id, doc) {
    const el = doc.getElementById(`chart-${id}`);
    return el ? JSON.parse(el.textContent) : undefined;
  }

  function columns(data) {
    const cols = [data.x, ...data.series.map((s) => s.values)];
    // The marked point (the current week) as its own series, drawn as a dot.
    if (data.mark !== null && data.mark !== undefined) cols.push(data.x.map((_, i) => (i === data.mark ? data.series[0].values[i] : null)));
    return cols;
  }

  function draw(el) {
    const id = el.dataset.chart;
    const data = chartData(id, document);
    if (!data || typeof uPlot === 'undefined') return;
    el.textContent = '';
    const css = getComputedStyle(document.documentElement);
    const stroke = css.getPropertyValue('--chart').trim() || '#1f5fbf';
    const series = [{ label: data.xIsWeek ? 'week' : 'time' }, ...data.series.map((s) => ({ label: s.label, stroke, width: 2, spanGaps: false, points: { show: data.x.length < 60, size: 6, fill: stroke } }))];
    if (data.mark !== null && data.mark !== undefined) series.push({ label: 'this week', stroke: '#b3261e', width: 0, points: { show: true, size: 10, fill: '#b3261e' } });
    const opts = {
      width: Math.max(260, el.clientWidth),
      height: 200,
      // A fixed span (a node's last 48 hours) keeps one point from stretching over years.
      scales: { x: data.xRange ? { time: true, range: () => data.xRange } : { time: !data.xIsWeek } },
      axes: [{ stroke: css.getPropertyValue('--fg').trim() }, { stroke: css.getPropertyValue('--fg').trim(), size: 60 }],
      legend: { show: true },
      series,
    };
    charts.set(id, { plot: new uPlot(opts, columns(data), el), el });
  }

  function drawAll() {
    for (const el of document.querySelectorAll('[data-chart]')) draw(el);
  }

  function resize() {
    for (const { plot, el } of charts.values()) plot.setSize({ width: Math.max(260, el.clientWidth), height: 200 });
  }

  function countdown() {
    for (const el of document.querySelectorAll('[data-countdown]')) {
      let s = Math.max(0, Math.floor((Number(el.dataset.countdown) - Date.now()) / 1000));
      const d = Math.floor(s / 86400);
      s %= 86400;
      const pad = (n) => String(n).padStart(2, '0');
      el.textContent = `(in ${d ? `${d}d ` : ''}${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)})`;
    }
  }

  async function refresh() {
    if (document.visibilityState !== 'visible') return;
    let doc;
    try {
      const res = await fetch(location.href, { headers: { accept: 'text/html' }, cache: 'no-store' });
      if (!res.ok) return;
      doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    } catch {
      return; // The gateway away for a moment: keep what is shown, try again next time.
    }
    for (const region of document.querySelectorAll('[data-region]')) {
      const next = doc.querySelector(`[data-region="${region.dataset.region}"]`);
      // Charts are updated in place below, not redrawn; a region holding the focus waits.
      if (!next || region.contains(document.activeElement) && document.activeElement !== document.body) continue;
      if (region.querySelector('[data-chart]')) {
        for (const [id, { plot }] of charts) {
          const data = chartData(id, doc);
          if (data) plot.setData(columns(data));
        }
        continue;
      }
      region.innerHTML = next.innerHTML;
    }
    countdown();
  }

  document.addEventListener('DOMContentLoaded', () => {
    drawAll();
    countdown();
    setInterval(countdown, 1000);
    if (document.querySelector('[data-region]')) setInterval(refresh, refreshMs);
    let pending;
    addEventListener('resize', () => {
      clearTimeout(pending);
      pending = setTimeout(resize, 150);
    });
  });
})();
