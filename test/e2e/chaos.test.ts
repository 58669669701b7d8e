/**
 * Issue 16's faults on the real stack, two honest nodes: each node SIGKILLed mid-stream 20 times
 * and restarted; the control worker and the gateway SIGKILLed under load and restarted; NATS,
 * MongoDB (FerretDB) and Temporal paused (SIGSTOP) for 20 s each. After each: every answer is
 * whole and continuous, or a clear error (an error event, a 503 with retry-after), never a hang;
 * no node is suspended for crashing. After all of them, the store: every request record final,
 * every reservation settled, every accrual once.
 *
 * Counts are printed per phase as `chaos | ...` lines (README, Tests).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tokenSubject, type InferInput } from '../../domain/inference.ts';

import { reconcileReservations } from '../../gateway/reservations.ts';
import { workflowIds } from '../../temporal.config.ts';
import { inferenceWorkflow } from '../../workflows/inference.ts';
import type { RequestOutcome } from '../../workflows/request.ts';
import { stack, unique } from '../helpers.ts';
import type { NodeProcess } from '../node-process.ts';
import { startControlProcess, startGatewayProcess, type ServiceProcess } from '../service-process.ts';
import { startNetwork, type Network } from './harness.ts';
import { store } from '../../store/index.ts';

const KILLS_PER_NODE = 20;
const PAUSE_MS = 20_000;
/** The most a client waits for the status of an answer while a dependency is paused ("within a few seconds"). */
const ANSWER_WITHIN_MS = 10_000;
const prompt = [{ role: 'user' as const, content: 'Tell me a long story about a river.' }];
const maxTokens = 40;

let net: Network;
let key: string;
let keyId: string;
let nodes: NodeProcess[];
/** The whole answer, as an undisturbed node gives it: every continued answer must equal it. */
let reference: string;
const services: ServiceProcess[] = [];
const paused = new Set<number>();
const resumeAll = () => {
  for (const pid of paused) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  paused.clear();
};
// A stopped service must never outlive this file, whatever fails: the rest of the run needs it.
process.once('exit', resumeAll);

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 100_000, tokensPerDay: 100_000_000 });
  // Slowed a little so that an answer is still flowing when its node is killed.
  const flags = ['--test-faults', 'slow:25', '--context-size', '512', '--max-parallel', '3'];
  nodes = await Promise.all([net.startNode('chaos-a', flags), net.startNode('chaos-b', flags)]);
  // Out of probation, as nodes that served for a while: the state that must survive the crashes.
  await Promise.all(nodes.map((n) => net.establish(n.nodeId, { passes: 0 })));
  ({ key, id: keyId } = await net.keys.issue('chaos'));
  // A fixture, not a check: on a starved machine a first answer may fail over and fail; ask again.
  let first: Outcome | undefined;
  for (let i = 0; i < 3 && first?.kind !== 'answer'; i++) first = await ask(net.url, false);
  if (first?.kind !== 'answer') throw new Error(`no reference answer: ${JSON.stringify(first)}`);
  reference = first.text;
}, 180_000);

afterAll(async () => {
  resumeAll();
  await Promise.all(services.map((s) => s.kill('SIGKILL')));
  await net?.stop();
});

type Outcome =
  | { kind: 'answer'; text: string; requestId: string; nodes: string[]; ms: number }
  /** A 503 (or a streamed error event), with its code and Retry-After. */
  | { kind: 'refused'; status: number; code: string; retryAfter: string | null; requestId: string | null; text: string; ms: number }
  /** The connection failed or was cut (the gateway process died). */
  | { kind: 'cut'; error: string; requestId: string | null; text: string; ms: number };

interface AskOptions {
  /** Called on each content chunk with the text so far and the node that began the answer. */
  onContent?: (pieces: number, node: string | undefined) => void;
  timeoutMs?: number;
}

/** One chat completion, streamed or not, read to its end; a hang fails the test at `timeoutMs`. */
async function ask(url: string, stream: boolean, options: AskOptions = {}): Promise<Outcome> {
  const started = Date.now();
  const ms = () => Date.now() - started;
  const timeoutMs = options.timeoutMs ?? 90_000;
  let requestId: string | null = null;
  let text = '';
  let response: Response;
  try {
    response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'gitblock-tiny', messages: prompt, max_tokens: maxTokens, temperature: 0, stream }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`no answer within ${timeoutMs} ms: a hang`, { cause: err });
    return { kind: 'cut', error: String((err as Error).cause ?? err), requestId, text, ms: ms() };
  }
  requestId = response.headers.get('x-gitblock-request-id');
  if (response.status !== 200) {
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string } };
    return { kind: 'refused', status: response.status, code: body.error?.code ?? '', retryAfter: response.headers.get('retry-after'), requestId, text, ms: ms() };
  }
  if (!stream) {
    const body = (await response.json()) as { choices: { message: { content: string } }[]; gitblock: { node_id: string } };
    return { kind: 'answer', text: body.choices[0]!.message.content, requestId: requestId!, nodes: [body.gitblock.node_id], ms: ms() };
  }
  let node: string | undefined;
  let pieces = 0;
  let finished = false;
  let done = false;
  let error: { code?: string } | undefined;
  const served = new Set<string>();
  try {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const bytes of response.body!) {
      buffer += decoder.decode(bytes as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end).replace(/^data: /, '');
        buffer = buffer.slice(end + 2);
        if (event === '[DONE]') {
          done = true;
          continue;
        }
        const chunk = JSON.parse(event) as { error?: { code?: string }; choices?: { delta?: { content?: string }; finish_reason?: string | null }[]; gitblock?: { node_id?: string } };
        if (chunk.error) error = chunk.error;
        if (chunk.gitblock?.node_id) served.add(chunk.gitblock.node_id);
        node ??= chunk.gitblock?.node_id;
        const content = chunk.choices?.[0]?.delta?.content;
        if (chunk.choices?.[0]?.finish_reason) finished = true;
        if (content) {
          text += content;
          options.onContent?.(++pieces, node);
        }
      }
    }
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`stream ${requestId} still open after ${timeoutMs} ms with ${JSON.stringify(text)}: a hang`, { cause: err });
    return { kind: 'cut', error: String((err as Error).cause ?? err), requestId, text, ms: ms() };
  }
  if (error) return { kind: 'refused', status: 200, code: error.code ?? '', retryAfter: null, requestId, text, ms: ms() };
  if (!done || !finished) return { kind: 'cut', error: 'stream ended without its last chunk', requestId, text, ms: ms() };
  return { kind: 'answer', text, requestId: requestId!, nodes: [...served], ms: ms() };
}

/** An answer must be the whole reference text (nothing lost, nothing repeated); anything cut short, a prefix of it. */
function expectContinuous(o: Outcome, what: string): void {
  if (o.kind === 'answer') expect(o.text, `${what}: ${o.requestId}`).toBe(reference);
  else expect(reference.startsWith(o.text), `${what}: partial text ${JSON.stringify(o.text)} is not the answer's beginning`).toBe(true);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function nodeStates(): Promise<Record<string, string | undefined>> {
  const docs = await store(net.mongo.db).nodes.find({ _id: { $in: nodes.map((n) => n.nodeId) } }).toArray();
  return Object.fromEntries(nodes.map((n) => [n.nodeId, docs.find((d) => d._id === n.nodeId)?.state]));
}

/** Serves one request on the node's own queue only: proof that it takes work. */
async function servesOn(nodeId: string): Promise<string> {
  const requestId = unique('own').replace(/-/g, '');
  const input: InferInput = { requestId, modelId: 'gitblock-tiny', messages: prompt, sampling: { temperature: 0, maxTokens: 4 }, subject: tokenSubject(requestId) };
  const { result } = await net.temporal.workflow.execute(inferenceWorkflow, { taskQueue: net.controlTaskQueue, workflowId: `own-${requestId}`, args: [input, [nodeId]], workflowExecutionTimeout: '60 seconds' });
  return result.nodeId;
}

describe('chaos (issue 16)', () => {
  it(`keeps every stream whole while each of two nodes is killed mid-answer ${KILLS_PER_NODE} times, and both end active and serving`, async () => {
    const kills = new Map(nodes.map((n) => [n.nodeId, 0]));
    const tally = { requests: 0, failovers: 0, errors: 0, unkilled: 0, waitedForBoth: 0 };
    // Restarts run while the next answers stream: a node may be killed while the other is still
    // coming back (its answer then waits in the model's queue for the first node back), so the
    // file's time is bounded by the restarts, not by their sum with the streams.
    const restarting = new Map<string, Promise<void>>();
    const deadline = Date.now() + 900_000;
    for (let round = 0; round < 4 * KILLS_PER_NODE && [...kills.values()].some((k) => k < KILLS_PER_NODE); round++) {
      if (Date.now() > deadline) throw new Error(`out of time after ${round} rounds: kills ${JSON.stringify(Object.fromEntries(kills))}`);
      // Both down: wait for the first back, or nobody serves the next answer.
      if (restarting.size === nodes.length) await Promise.race(restarting.values());
      let killed: string | undefined;
      const other = restarting.size > 0;
      const outcome = await ask(net.url, true, {
        timeoutMs: 90_000,
        onContent: (pieces, serving) => {
          if (pieces !== 3 || killed || !serving || restarting.has(serving) || (kills.get(serving) ?? KILLS_PER_NODE) >= KILLS_PER_NODE) return;
          const node = nodes.find((n) => n.nodeId === serving)!;
          node.child.kill('SIGKILL');
          killed = serving;
          kills.set(serving, kills.get(serving)! + 1);
          // Back at once, as a machine that reboots; the answer meanwhile goes on on another node.
          const back = net
            .restartNode(node)
            .then((again) => {
              nodes[nodes.indexOf(node)] = again;
            })
            .finally(() => restarting.delete(serving));
          // Its failure fails the test where it is awaited (below), not as an unhandled rejection meanwhile.
          back.catch(() => {});
          restarting.set(serving, back);
        },
      });
      tally.requests++;
      expectContinuous(outcome, `round ${round}`);
      if (outcome.kind === 'refused') {
        // A clear error event: allowed, counted, and never the rule.
        tally.errors++;
        expect(outcome.code, JSON.stringify(outcome)).toMatch(/^(no_node_available|upstream_unavailable)$/);
      } else expect(outcome.kind, JSON.stringify(outcome)).toBe('answer');
      if (!killed) tally.unkilled++;
      else if (outcome.kind === 'answer') {
        tally.failovers++;
        if (other) tally.waitedForBoth++;
      }
    }
    await Promise.all(restarting.values());
    console.log(`chaos | node kills: ${[...kills.values()].join(' + ')} kills, ${tally.requests} streamed requests, ${tally.failovers} continued on another node (${tally.waitedForBoth} of them while the other was still restarting), ${tally.unkilled} not killed, ${tally.errors} ended with an error event`);
    expect([...kills.values()]).toEqual([KILLS_PER_NODE, KILLS_PER_NODE]);
    // The network never went dark: nearly every killed stream was finished by the other node.
    expect(tally.errors).toBeLessThanOrEqual(2);

    // Crashing is not lying: neither node is suspended, and once each has served again cleanly,
    // both are active; each takes work on its own queue.
    const states = await nodeStates();
    expect(Object.values(states), JSON.stringify(states)).not.toContain('suspended');
    for (const n of nodes) expect(await servesOn(n.nodeId)).toBe(n.nodeId);
    const settle = Date.now() + 60_000;
    for (let i = 0; i < 40 && Object.values(await nodeStates()).some((s) => s !== 'active'); i++) {
      if (Date.now() > settle) break;
      // Degraded by the crashes, a node earns its way back by serving.
      const o = await ask(net.url, false);
      expectContinuous(o, 'recovery');
    }
    expect(await nodeStates()).toEqual(Object.fromEntries(nodes.map((n) => [n.nodeId, 'active'])));
  }, 1_000_000);

  it('restarts the control worker and the gateway, each killed under load, with no request lost or left hanging', async () => {
    const target = { db: net.mongo.db.databaseName, controlTaskQueue: net.controlTaskQueue };
    // The control worker and a gateway as processes of their own, so they can die as machines do.
    await net.control.shutdown();
    const [control, gateway] = await Promise.all([startControlProcess(target), startGatewayProcess(target)]);
    services.push(control, gateway);
    const gatewayUrl = gateway.ready[1]!;
    const port = Number(new URL(gatewayUrl).port);

    const outcomes: Outcome[] = [];
    let gatewayDown = false;
    let loading = true;
    let cutStreams = 0;
    let connectionsRefused = 0;
    const client = async (stream: boolean) => {
      for (let i = 0; loading && i < 200; i++) {
        const o = await ask(gatewayUrl, stream);
        outcomes.push(o);
        if (o.kind === 'cut') {
          // Only the gateway's own death cuts a request, or refuses a connection.
          expect(gatewayDown, `cut while the gateway was up: ${JSON.stringify(o)}`).toBe(true);
          if (o.requestId) cutStreams++;
          else connectionsRefused++;
          await sleep(500);
        } else if (o.kind === 'refused') {
          expect(o.status, JSON.stringify(o)).toBe(503);
          expect(o.retryAfter, JSON.stringify(o)).not.toBeNull();
        }
        expectContinuous(o, 'under restarts');
      }
    };
    const load = Promise.all([client(true), client(true), client(false)]);

    await sleep(3_000);
    await control.kill('SIGKILL');
    const control2 = await startControlProcess(target);
    services.push(control2);
    await sleep(3_000);
    // Mid-stream: the gateway dies with answers flowing.
    gatewayDown = true;
    await gateway.kill('SIGKILL');
    const gateway2 = await startGatewayProcess(target, port);
    services.push(gateway2);
    await sleep(500);
    gatewayDown = false;
    await sleep(3_000);
    loading = false;
    await load;

    const answered = outcomes.filter((o) => o.kind === 'answer').length;
    const refused = outcomes.filter((o) => o.kind === 'refused').length;
    console.log(`chaos | restarts: control worker 1 kill, gateway 1 kill, ${outcomes.length} requests, ${answered} answered, ${refused} 503s, ${cutStreams} streams cut by the gateway's death, ${connectionsRefused} connections refused while it restarted`);
    // Served on through both restarts (how many depends on how long the restarts take).
    expect(answered).toBeGreaterThan(0);
    expect(cutStreams).toBeGreaterThan(0);

    // The requests the dead gateway was streaming still complete and are paid.
    const cut = outcomes.filter((o) => o.kind === 'cut' && o.requestId).map((o) => o.requestId!);
    for (const requestId of cut) {
      const handle = net.temporal.workflow.getHandle(workflowIds.request(requestId));
      const result = (await handle.result()) as RequestOutcome;
      expect(result.accrual.status).toBe('accrued');
    }
  }, 300_000);

  for (const service of ['nats', 'mongodb', 'temporal'] as const) {
    it(`answers or refuses clearly within seconds while ${service} is paused for ${PAUSE_MS / 1000} s, and recovers`, async () => {
      const pid = servicePid(service);
      const outcomes: Outcome[] = [];
      process.kill(pid, 'SIGSTOP');
      paused.add(pid);
      const until = Date.now() + PAUSE_MS;
      try {
        for (let i = 0; Date.now() < until && i < 100; i++) {
          const o = await ask(net.url, i % 2 === 0, { timeoutMs: PAUSE_MS + 60_000 });
          outcomes.push(o);
          expect(o.kind, JSON.stringify(o)).not.toBe('cut');
          expectContinuous(o, `${service} paused`);
          if (o.kind === 'refused' && o.status === 503) {
            expect(o.ms, JSON.stringify(o)).toBeLessThan(ANSWER_WITHIN_MS);
            expect(o.retryAfter, JSON.stringify(o)).not.toBeNull();
          } else if (o.kind === 'refused') {
            // A stream that began before the pause may end with an error event instead.
            expect(o.code, JSON.stringify(o)).toMatch(/^(no_node_available|upstream_unavailable)$/);
          }
          if (o.kind === 'refused') await sleep(500);
        }
      } finally {
        process.kill(pid, 'SIGCONT');
        paused.delete(pid);
      }
      const refused = outcomes.filter((o) => o.kind === 'refused').length;
      // Back: within a bounded wait the network answers again, whole.
      const resumed = Date.now();
      let back: Outcome | undefined;
      for (let i = 0; i < 60 && Date.now() - resumed < 60_000; i++) {
        back = await ask(net.url, i % 2 === 1);
        if (back.kind === 'answer') break;
        await sleep(500);
      }
      expect(back?.kind, JSON.stringify(back)).toBe('answer');
      expectContinuous(back!, `after ${service}`);
      const slowest = Math.max(...outcomes.filter((o) => o.kind === 'refused' && o.status === 503).map((o) => o.ms), 0);
      console.log(`chaos | ${service} paused ${PAUSE_MS / 1000} s: ${outcomes.length} requests, ${outcomes.length - refused} answered, ${refused} refused (slowest 503 in ${slowest} ms), answering again ${Date.now() - resumed} ms after resume`);
    }, 180_000);
  }

  it('leaves the store consistent: every request final, every reservation settled, every accrual once, no node suspended', async () => {
    const db = net.mongo.db;
    const requests = store(db).requests;
    // Every request workflow has ended (bounded wait).
    const deadline = Date.now() + 90_000;
    for (;;) {
      const open = await requests.find({ status: { $nin: ['completed', 'failed', 'cancelled'] } }).toArray();
      const running = (
        await Promise.all(
          open.map(async (r) => {
            const described = await net.temporal.workflow.getHandle(workflowIds.request(r._id)).describe().catch(() => undefined);
            return described?.status.name === 'RUNNING' ? r._id : undefined;
          }),
        )
      ).filter(Boolean);
      if (!running.length) break;
      if (Date.now() > deadline) throw new Error(`request workflows still running: ${running.join(', ')}`);
      await sleep(500);
    }
    // What the gateways' reconciler does every minute, without its waits: settles what a dead
    // gateway, or a dependency that was away, left unsettled, and closes records nobody closed.
    const { settled } = await reconcileReservations({ keys: net.keys, temporal: net.temporal, db }, { graceMs: 0, notStartedMs: 0 });

    const all = await requests.find({}).toArray();
    const notFinal = all.filter((r) => !['completed', 'failed', 'cancelled'].includes(r.status));
    expect(notFinal.map((r) => `${r._id}: ${r.status}`)).toEqual([]);

    const reservations = await store(db).apiKeyTokens.find({ kind: 'reserve', keyId }).toArray();
    const claims = await store(db).apiKeySettlements.find({ keyId }).toArray();
    const claimed = new Map(claims.map((c) => [c._id, c]));
    expect(reservations.filter((r) => claimed.get(r.ref ?? '')?.applied !== true).map((r) => r.ref)).toEqual([]);
    expect(claims.length).toBe(reservations.length);
    // The key's day total is exactly what its settled requests used: no reservation charged
    // whole, none refunded twice.
    const usage = await net.keys.usage(keyId);
    const today = usage.day;
    expect(usage.usedTokens).toBe(claims.filter((c) => c.day === today).reduce((sum, c) => sum + c.actual, 0));

    // One accrual per completed request that accrued, none for any other.
    const ledger = await store(db).ledger.find({}).toArray();
    const accrued = all.filter((r) => r.status === 'completed' && r.accrual?.status === 'accrued');
    const paid = new Set(accrued.map((r) => r._id));
    const unexplained = ledger.filter((l) => !paid.has(l._id)).map((l) => ({ ledger: l, request: all.find((r) => r._id === l._id) }));
    expect(unexplained, JSON.stringify(unexplained)).toEqual([]);
    expect(ledger.length).toBe(accrued.length);
    for (const r of accrued) expect(ledger.find((l) => l._id === r._id)?.amount).toBe(r.accrual!.amount);

    const states = await nodeStates();
    expect(Object.values(states), JSON.stringify(states)).not.toContain('suspended');
    console.log(`chaos | store: ${all.length} request records, all final; ${reservations.length} reservations, all settled (${settled} by the reconciler); ${ledger.length} accruals, one per paid request; nodes ${Object.values(states).join(', ')}`);
  }, 180_000);
});

/** The pid of the stack's own process for `service`, found by the port it listens on (Linux /proc). */
function servicePid(service: 'nats' | 'mongodb' | 'temporal'): number {
  const s = stack();
  const port = Number(
    service === 'nats' ? new URL(s.natsUrl).port : service === 'mongodb' ? new URL(s.mongodbUri).port : s.temporalAddress.split(':').pop(),
  );
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && f[3] === '0A' && parseInt(f[1]!.split(':').pop()!, 16) === port) inodes.add(f[9]!);
    }
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!inodes.has(/^socket:\[(\d+)\]$/.exec(target)?.[1] ?? '')) continue;
      // Only the stack's own server: never pause a MongoDB this run was merely given.
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const tool = { nats: /nats-server/, mongodb: /ferretdb|mongod/, temporal: /temporal/ }[service];
      if (!tool.test(cmd) || !cmd.includes('gitblock-test-')) throw new Error(`port ${port} is held by pid ${pid} (${cmd.replace(/\0/g, ' ').slice(0, 200)}), not the test stack's ${service}`);
      return Number(pid);
    }
  }
  throw new Error(`no process listens on ${service}'s port ${port}`);
}
