/**
 * The status pages in a real browser (Playwright driving Debian's chromium) against the real
 * network: a node started during the test shows up live, a served request moves the counters, a
 * suspended node shows as suspended, its operator's page shows the accrual; no console errors.
 * Screenshots of every page go to .data/artifacts/status/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES } from '../../domain/reputation.ts';
import { workflowIds } from '../../temporal.config.ts';
import { verificationVerdictSignal } from '../../workflows/node-actor.ts';
import { unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const artifacts = join(process.cwd(), '.data', 'artifacts', 'status');

let net: Network;
let browser: Browser;
let page: Page;
let key: string;
const consoleErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(executablePath)) throw new Error(`no chromium at ${executablePath}: apt-get install -y chromium (.ci/run does), or set CHROMIUM_PATH`);
  mkdirSync(artifacts, { recursive: true });
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  key = ((await issued.json()) as { key: string }).key;
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: ${err.message}`));
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await net?.stop();
});

const text = async (selector: string) => ((await page.locator(selector).first().textContent()) ?? '').trim();
const count = async (selector: string) => Number((await text(selector)).replace(/[^0-9]/g, ''));
const shot = (name: string) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

/** One served request. On the loaded test machine a heartbeat can lapse for a moment: a 503 is retried as its Retry-After says. */
async function chat(content: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${net.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gitblock-tiny', messages: [{ role: 'user', content }], max_tokens: 8, temperature: 0 }),
    });
    const body = await res.text();
    if (res.status === 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000 * Number(res.headers.get('retry-after') ?? 1)));
      continue;
    }
    expect(res.status, body).toBe(200);
    return;
  }
}

describe('the status pages, in a browser', () => {
  let node: NodeProcess;

  it('shows a node started during the test on / and /nodes within 10 s, without a reload', async () => {
    await page.goto(`${net.url}/`);
    await page.locator('h1', { hasText: 'Network' }).waitFor();
    expect(await count('[data-test="live-nodes"]')).toBe(0);
    await page.goto(`${net.url}/nodes`);
    const second = await browser.newPage();
    second.on('pageerror', (err) => consoleErrors.push(`${second.url()}: ${err.message}`));
    await second.goto(`${net.url}/`);

    node = await net.startNode('status-a');
    const started = Date.now();
    // Both pages were open before the node existed: the live refresh must bring it in.
    await page.locator(`tr[data-node="${node.nodeId}"]`).waitFor({ timeout: 10_000 });
    await second.locator('[data-test="live-nodes"]', { hasText: /^1$/ }).waitFor({ timeout: Math.max(1_000, 10_000 - (Date.now() - started)) });
    await second.close();
    // Hardware as the node reported it (the test nodes run on CPU).
    expect(await text(`tr[data-node="${node.nodeId}"] td:nth-of-type(2)`)).toMatch(/^CPU · CPU · \d/);
  }, 60_000);

  it('raises the counters when a request is served, and the operator page shows the accrual', async () => {
    await page.goto(`${net.url}/`);
    const before = await count('[data-test="requests-hour"]');
    await chat('Say hello.');
    // The series is re-read every few seconds, the page every 5 s.
    await expect.poll(() => count('[data-test="requests-hour"]'), { timeout: 20_000, interval: 250 }).toBeGreaterThan(before);
    await shot('network');

    await page.goto(`${net.url}/nodes/${node.nodeId}`);
    await expect.poll(async () => (await page.reload(), count('[data-test="served"]')), { timeout: 20_000, interval: 1_000 }).toBeGreaterThanOrEqual(1);
    expect(await text('[data-test="hardware"]')).toMatch(/^CPU/);
    await page.locator('[data-chart="reputation"] canvas').waitFor();
    await shot('node');

    const operator = await net.operatorOf(node.nodeId);
    await page.goto(`${net.url}/operators/${operator}`);
    await expect.poll(async () => (await page.reload(), count('[data-test="accrued-requests"]')), { timeout: 20_000, interval: 1_000 }).toBeGreaterThanOrEqual(1);
    expect(await text('[data-test="accrued"]')).not.toBe('0 GBT');
    expect(await text('pre code')).toContain(`rewards claim --gateway ${net.url}`);
    // The same numbers as the JSON API.
    const json = (await (await fetch(`${net.url}/v1/rewards/${operator}`)).json()) as { accrued: { requests: number } };
    expect(await count('[data-test="accrued-requests"]')).toBe(json.accrued.requests);
    await shot('operator');
  }, 90_000);

  it('shows a suspended node as suspended, on /nodes and in the count on /', async () => {
    const actor = net.temporal.workflow.getHandle(workflowIds.node(node.nodeId));
    for (let i = 0; i < SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES; i++) {
      await actor.signal(verificationVerdictSignal, { requestId: unique('lie'), passed: false, at: Date.now() });
    }
    const nodes = store(net.mongo.db).nodes;
    await expect.poll(async () => (await nodes.findOne({ _id: node.nodeId }))?.state, { timeout: 20_000 }).toBe('suspended');

    await page.goto(`${net.url}/nodes`);
    await page.locator(`tr[data-node="${node.nodeId}"] [data-test="state"]`, { hasText: 'suspended' }).waitFor({ timeout: 10_000 });
    await shot('nodes');
    await page.goto(`${net.url}/`);
    await expect.poll(() => count('[data-test="suspended"]'), { timeout: 15_000, interval: 250 }).toBe(1);
    await expect.poll(() => count('[data-test="checks-failed"]'), { timeout: 15_000, interval: 250 }).toBeGreaterThanOrEqual(SUSPEND_AFTER_CONSECUTIVE_VERIFICATION_FAILURES);
  }, 60_000);

  it('draws the emission schedule with the current week, and fits a phone’s width', async () => {
    await page.goto(`${net.url}/emission`);
    expect(await text('[data-test="current-epoch"]')).toMatch(/^week \d+$/);
    await page.locator('[data-chart="emission"] canvas').waitFor();
    await shot('emission');
    await page.setViewportSize({ width: 360, height: 800 });
    for (const path of ['/', '/nodes', `/nodes/${node.nodeId}`, '/emission']) {
      await page.goto(`${net.url}${path}`);
      // Wide tables scroll inside their own region; the page itself never scrolls sideways.
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360);
    }
    await page.goto(`${net.url}/`);
    await shot('network-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 60_000);

  it('answers a bad address or node id with a 400 page and an unknown node with a 404, never a 5xx; logs no console error', async () => {
    const bad = await fetch(`${net.url}/operators/0x1234`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${net.url}/nodes/${encodeURIComponent('<script>')}`)).status).toBe(400);
    expect((await fetch(`${net.url}/nodes/no-such-node-here`)).status).toBe(404);
    expect((await fetch(`${net.url}/nodes?model=${encodeURIComponent('"><b>')}`)).status).toBe(400);
    const status = (await (await fetch(`${net.url}/v1/status`)).json()) as { object: string; nodes: { registered: number } };
    expect(status).toMatchObject({ object: 'network_status', nodes: { registered: 1 } });
    const listed = (await (await fetch(`${net.url}/v1/nodes`)).json()) as { data: { hardware: unknown }[] };
    expect(listed.data[0]?.hardware).toMatchObject({ backend: 'cpu', as_reported: true, memory_bytes: expect.any(Number) });
    expect(consoleErrors).toEqual([]);
  });
});
