/**
 * Issue 5's benchmark, in one run on one machine:
 *   - a check's time (teacher-forcing prefill) as a share of the original generation's,
 *   - the network-wide verification overhead at the default sampling policy,
 *   - the measured detection rate of each fault mode, and the false-alarm rate on honest answers.
 *
 *   npx tsx bench/verification.ts [--model gitblock-tiny|smollm2-135m] [--samples 100] [--tokens 64]
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type { Token } from 'node-llama-cpp';
import { loadConfig } from '../config/env.ts';
import type { Sampling, ToolSpec } from '../domain/inference.ts';
import { normalizeJsonSchema } from '../domain/json-schema.ts';
import { samplingPolicy } from '../domain/sampling.ts';
import { judge } from '../domain/verification.ts';
import { getModel } from '../models/catalog.ts';
import { generateImpostorModel } from '../models/fixture/tiny-llama.ts';
import { ModelEngine } from '../workers/node/engine.ts';
import { detectCompute } from '../workers/node/gpu.ts';
import { resolveModelFile } from '../workers/node/model-files.ts';
import { defaultThreads } from '../workers/node/options.ts';
import { flag, intFlag, median, table } from './harness.ts';

const modelId = flag('model', 'gitblock-tiny');
const samples = intFlag('samples', 100);
const tokens = intFlag('tokens', 64);
const config = loadConfig();
const file = await resolveModelFile(getModel(modelId), { modelDir: config.GITBLOCK_MODEL_DIR });
const compute = await detectCompute('auto');
const threads = compute.backend === 'cpu' ? defaultThreads(availableParallelism()) : 0;
const load = (path: string) => ModelEngine.load(compute.llama, { modelId, modelPath: path, contextSize: 1024, sequences: 1, threads });
const node = await load(file.path);
const verifier = await load(file.path);
const impostor = modelId === 'gitblock-tiny' ? await load((await generateImpostorModel(join(dirname(file.path), 'gitblock-tiny-impostor.gguf'))).path) : undefined;

const topics = ['the sea', 'mountains', 'a small town', 'the stars', 'bread', 'rivers', 'a long journey', 'winter'];
const prompt = (i: number) => node.renderChat([{ role: 'user', content: `Write a few sentences about ${topics[i % topics.length]} (${i}).` }]);
const samplingFor = (i: number): Sampling => (i % 2 ? { temperature: 0.8, seed: i, maxTokens: tokens } : { temperature: 0, maxTokens: tokens });

async function check(p: Token[], claimed: Token[], sampling: Sampling, finishReason: 'stop' | 'length') {
  const t = performance.now();
  const scored = await verifier.score(p, claimed, sampling);
  const checkMs = performance.now() - t;
  const verdict = judge({ sampling, finishReason, tokenCount: claimed.length }, { verifierNodeId: 'v', ...scored, checkMs });
  return { verdict, checkMs };
}

// Honest answers: cost share and false alarms.
const shares: number[] = [];
let falseAlarms = 0;
for (let i = 0; i < samples; i++) {
  const p = prompt(i);
  const t = performance.now();
  const answer = await node.generate({ promptTokens: p, sampling: samplingFor(i) });
  const generationMs = performance.now() - t;
  const { verdict, checkMs } = await check(p, answer.tokens, samplingFor(i), answer.finishReason);
  shares.push(checkMs / generationMs);
  if (!verdict.passed) {
    falseAlarms++;
    console.error(`false alarm #${i} ${JSON.stringify(samplingFor(i))} finish=${answer.finishReason} n=${answer.tokens.length}: ${verdict.reason}`);
  }
}
const share = median(shares);

// Honest answers under the constraints a request may add (issue 11): a JSON schema, json_object,
// required tool calls, penalties, logit_bias. The verifier re-scores under the same ones.
const schema = normalizeJsonSchema({ type: 'object', properties: { place: { type: 'string', maxLength: 24 }, good: { type: 'boolean' } } });
const tools: ToolSpec[] = [{ name: 'find_place', description: 'Looks a place up', parameters: normalizeJsonSchema({ type: 'object', properties: { name: { type: 'string', maxLength: 16 } } }) }];
const someTokens = node.model.tokenize(' the sea', false).map(String);
const constraints: [string, Partial<Sampling>][] = [
  ['json_schema', { grammar: { type: 'json_schema', schema } }],
  ['json_object', { grammar: { type: 'json' } }],
  ['tool call', { grammar: { type: 'tool_calls', tools: tools.map((t) => ({ name: t.name, parameters: t.parameters })), parallel: false } }],
  ['penalties', { frequencyPenalty: 1, presencePenalty: 0.5 }],
  ['logit_bias', { logitBias: Object.fromEntries(someTokens.map((t, k) => [t, k % 2 ? -100 : 3])) }],
];
const constrainedFor = (i: number): [string, Sampling] => {
  const [name, extra] = constraints[i % constraints.length]!;
  return [name, { ...samplingFor(Math.floor(i / constraints.length)), ...extra }];
};
const constrainedPrompt = (i: number, sampling: Sampling) => {
  const messages = [{ role: 'user' as const, content: `Write a few sentences about ${topics[i % topics.length]} (${i}).` }];
  return sampling.grammar?.type === 'tool_calls' ? node.renderChat(messages, tools) : node.renderChat(messages);
};
const constrainedShares: number[] = [];
let constrainedFalseAlarms = 0;
for (let i = 0; i < samples; i++) {
  const [name, sampling] = constrainedFor(i);
  const p = constrainedPrompt(i, sampling);
  const t = performance.now();
  const answer = await node.generate({ promptTokens: p, sampling });
  const generationMs = performance.now() - t;
  const { verdict, checkMs } = await check(p, answer.tokens, sampling, answer.finishReason);
  constrainedShares.push(checkMs / generationMs);
  if (!verdict.passed) {
    constrainedFalseAlarms++;
    console.error(`false alarm, constrained #${i} (${name}) finish=${answer.finishReason} n=${answer.tokens.length}: ${verdict.reason}`);
  }
}

// Lies.
const detection: Record<string, number> = {};
type Lie = { p: Token[]; claimed: Token[]; finish: 'stop' | 'length'; claim?: Sampling };
const lies: [string, (i: number) => Promise<Lie>][] = [
  ['random tokens', async (i) => ({ p: prompt(i), claimed: (await node.generate({ promptTokens: prompt(i), sampling: { ...samplingFor(i), temperature: 5, topK: 0, topP: 1 } })).tokens, finish: 'length' })],
  ['truncated', async (i) => {
    const full = await node.generate({ promptTokens: prompt(i), sampling: samplingFor(i) });
    return { p: prompt(i), claimed: full.tokens.slice(0, Math.max(1, Math.floor(full.tokens.length * (0.2 + 0.4 * ((i * 7919) % 100) / 100)))), finish: 'stop' };
  }],
  ['no grammar, claiming one', async (i) => ({ p: prompt(i), claimed: (await node.generate({ promptTokens: prompt(i), sampling: samplingFor(i) })).tokens, finish: 'length', claim: { ...samplingFor(i), grammar: { type: 'json_schema', schema } } })],
  ...(impostor ? [['different model', async (i: number) => ({ p: prompt(i), claimed: (await impostor.generate({ promptTokens: prompt(i), sampling: samplingFor(i) })).tokens, finish: 'length' as const })] as [string, (i: number) => Promise<Lie>]] : []),
];
for (const [name, lie] of lies) {
  let caught = 0;
  for (let i = 0; i < samples; i++) {
    const { p, claimed, finish, claim } = await lie(i);
    if (!(await check(p, claimed, claim ?? samplingFor(i), finish)).verdict.passed) caught++;
  }
  detection[name] = caught / samples;
}

console.log(`model ${modelId}, backend ${compute.backend}, ${tokens}-token answers, ${samples} samples per row (half greedy, half temperature 0.8)\n`);
console.log(table([
  { measure: 'check time / generation time (median)', value: `${(share * 100).toFixed(1)} %` },
  { measure: `verification overhead, probation nodes (rate ${samplingPolicy.probation})`, value: `${(samplingPolicy.probation * share * 100).toFixed(1)} % of serving compute` },
  { measure: `verification overhead, new active nodes (rate ${samplingPolicy.active})`, value: `${(samplingPolicy.active * share * 100).toFixed(1)} %` },
  { measure: `verification overhead, established nodes (rate ${samplingPolicy.floor})`, value: `${(samplingPolicy.floor * share * 100).toFixed(2)} %` },
  { measure: 'false alarms on honest answers', value: `${falseAlarms} / ${samples}` },
  { measure: 'false alarms on honest constrained answers (JSON schema, json_object, tool call, penalties, logit_bias)', value: `${constrainedFalseAlarms} / ${samples}` },
  { measure: 'check time / generation time, constrained answers (median)', value: `${(median(constrainedShares) * 100).toFixed(1)} %` },
  ...Object.entries(detection).map(([name, rate]) => ({ measure: `detection rate: ${name}`, value: `${(rate * 100).toFixed(0)} %` })),
]));
process.exit(0);
