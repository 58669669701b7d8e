/**
 * One loaded model on this node: a LlamaModel and one LlamaContext whose sequences serve
 * concurrent requests (node-llama-cpp batches their evaluation). Knows nothing of Temporal or
 * NATS, so the bare benchmark and the `infer` activity run exactly the same generation code.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import {
  resolveChatWrapper,
  type ChatWrapper,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { ChatMessage, FinishReason, Sampling, TokenLogprob, ToolSpec } from '../../domain/inference.ts';
import { positionStat, resolveSampling, type PositionStat } from '../../domain/verification.ts';
import { EngineError, type GenerateRequest, type GenerateResult, type InferenceEngine, type ScoreReport } from '../../domain/engine.ts';
import { Constraints, GrammarCache, type GrammarWalk } from './constraints.ts';
import { callSyntaxOf, chatHistoryOf, functionsOf, parseToolCalls, toolCallsGbnf } from './tools.ts';

export interface EngineOptions {
  modelId: string;
  modelPath: string;
  /** Tokens each sequence can hold: prompt + answer. */
  contextSize: number;
  /** Concurrent requests; one context sequence each. */
  sequences: number;
  /** CPU threads for evaluation; 0 = node-llama-cpp's default (all math cores). */
  threads: number;
  gpuLayers?: 'auto' | number;
}

/**
 * sha256 of a model file, cached beside it by size and mtime: hashing a 40 GB GGUF on every
 * start would cost minutes.
 */
export async function modelFileHash(path: string): Promise<string> {
  const { size, mtimeMs } = statSync(path);
  const cacheFile = `${path}.sha256.json`;
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { size: number; mtimeMs: number; sha256: string };
    if (cached.size === size && cached.mtimeMs === mtimeMs) return cached.sha256;
  } catch {
    // no cache yet
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  try {
    writeFileSync(cacheFile, JSON.stringify({ size, mtimeMs, sha256 }));
  } catch {
    // a read-only model folder only costs a re-hash next time
  }
  return sha256;
}

/** The longest suffix of `text` that is a proper prefix of some stop string: held back until resolved. */
function pendingStopOverlap(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

/**
 * Turns a token stream into text that is final when released: bytes of an incomplete UTF-8
 * character wait for the rest, and a tail that may begin a stop string waits until it
 * cannot. Detokenizes only new tokens (with a few previous ones for spacing), so the cost per
 * token stays constant however long the answer.
 */
class StreamingText {
  released = '';
  private held = '';
  private pending: Token[] = [];
  private history: Token[];
  private stopped = false;
  /** Set once the marker appeared: from there on the text is tool calls, never released. */
  private withholding = false;

  constructor(
    private readonly model: LlamaModel,
    private readonly stops: readonly string[],
    prefix: readonly Token[],
    prefixText?: string,
    /** Whitespace held back at the end is dropped (a grammar's answer ends without it). */
    private readonly trimEnd = false,
    /** Where tool calls start: the text before it is released, none after it. */
    private readonly marker?: string,
  ) {
    this.history = prefix.slice(-8);
    if (prefixText === undefined || !prefix.length) return;
    // Rebuild the earlier attempt's state: trailing tokens of an incomplete character stay
    // pending (this.push never leaves more than 3), and what the rest decodes to beyond the
    // delivered text was held back.
    for (let k = 0; k < 4; k++) {
      const head = prefix.slice(0, prefix.length - k);
      const decoded = this.model.detokenize(head, false);
      if (decoded.endsWith('\uFFFD') && k < 3) continue;
      // Delivered text that does not match its tokens: keep the old behaviour rather than guess.
      if (!decoded.startsWith(prefixText)) return;
      this.held = decoded.slice(prefixText.length);
      this.pending = prefix.slice(prefix.length - k);
      this.history = head.slice(-8);
      // The earlier attempt was already writing tool calls: keep withholding them.
      const at = this.marker ? this.held.indexOf(this.marker) : -1;
      if (at >= 0) {
        this.held = this.held.slice(0, at);
        this.withholding = true;
      }
      return;
    }
  }

  push(token: Token): { piece: string; stopped: boolean } {
    this.pending.push(token);
    const decoded = this.model.detokenize(this.pending, false, this.history);
    if (decoded.endsWith('\uFFFD') && this.pending.length < 4) return { piece: '', stopped: false };
    this.history = [...this.history, ...this.pending].slice(-8);
    this.pending = [];
    if (this.withholding) {
      const piece = this.release(this.held);
      this.held = '';
      return { piece, stopped: false };
    }
    const candidate = this.held + decoded;
    let stopAt = -1;
    for (const stop of this.stops) {
      const at = candidate.indexOf(stop);
      if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
    }
    if (stopAt >= 0) {
      this.held = '';
      this.stopped = true;
      return { piece: this.release(candidate.slice(0, stopAt)), stopped: true };
    }
    const at = this.marker ? candidate.indexOf(this.marker) : -1;
    if (at >= 0) {
      this.held = '';
      this.withholding = true;
      return { piece: this.release(candidate.slice(0, at)), stopped: false };
    }
    // Under a grammar that ends without trailing whitespace, whitespace waits for what follows it.
    const trailing = this.trimEnd ? candidate.length - candidate.trimEnd().length : 0;
    const hold = Math.max(trailing, pendingStopOverlap(candidate, this.marker ? [...this.stops, this.marker] : this.stops));
    this.held = candidate.slice(candidate.length - hold);
    return { piece: this.release(candidate.slice(0, candidate.length - hold)), stopped: false };
  }

  /** Releases whatever was held back once generation has ended without a stop string. */
  finish(): string {
    if (this.stopped) return '';
    if (this.withholding) {
      const piece = this.release(this.held);
      this.held = '';
      return piece;
    }
    const tail = this.held + (this.pending.length ? this.model.detokenize(this.pending, false, this.history) : '');
    this.held = '';
    this.pending = [];
    return this.release(this.trimEnd ? tail.trimEnd() : tail);
  }

  private release(piece: string): string {
    this.released += piece;
    return piece;
  }
}

/** The options a request's tokens are drawn with, grammar aside: a verifier models exactly these. */
function samplerOptions(sampling: Sampling, constraints: Constraints, repeatPenalty: ReturnType<Constraints['repeatPenalty']>) {
  const resolved = resolveSampling(sampling);
  return {
    temperature: resolved.temperature,
    topK: resolved.topK,
    topP: resolved.topP,
    minP: 0,
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(constraints.tokenBias ? { tokenBias: constraints.tokenBias } : {}),
    ...(repeatPenalty ? { repeatPenalty } : {}),
  };
}

/** Temperature 1 with no truncation: the distribution any sampler's is derived from. */
const rawOptions = { temperature: 1, topK: 0, topP: 1, minP: 0 } as const;
/**
 * How many of the top tokens a verifier reads at each position under a grammar. Where fewer
 * than the sampler needs are allowed among them, it reads that position's whole distribution.
 */
const grammarScoringWidth = 512;

type Distribution = { tokens: Token[]; probs: number[] };

/** The entries of a distribution whose token passes `allowed`, in order. */
function keep(dist: Distribution, allowed: (t: Token) => boolean): Distribution {
  const out: Distribution = { tokens: [], probs: [] };
  for (let i = 0; i < dist.tokens.length; i++) {
    if (!allowed(dist.tokens[i]!)) continue;
    out.tokens.push(dist.tokens[i]!);
    out.probs.push(dist.probs[i]!);
  }
  return out;
}

/**
 * Whether the most probable allowed tokens found so far already settle what the sampler keeps
 * under a grammar: `allowed` are their probabilities (most probable first, out of the whole
 * vocabulary), `unseen` the probability of every token not yet looked at, which may hold more
 * allowed ones, all less probable. Greedy needs the top one; sampling, the top-k, or fewer where
 * top-p cuts the same place whatever the unseen tokens hold.
 */
function settled(allowed: readonly number[], unseen: number, sampling: Sampling): boolean {
  const s = resolveSampling(sampling);
  if (s.temperature === 0) return allowed.length > 0;
  if (s.topK > 0 && allowed.length >= s.topK) return true;
  const found = allowed.reduce((a, b) => a + b, 0);
  const cut = (mass: number) => {
    let cumulative = 0;
    for (let j = 0; j < allowed.length; j++) {
      cumulative += allowed[j]!;
      if (cumulative >= s.topP * mass) return j;
    }
    return -1;
  };
  const at = cut(found + Math.max(0, unseen));
  return at >= 0 && at === cut(found);
}

/**
 * From the top of a distribution, the most probable tokens the grammar allows, testing tokens
 * in order of probability only until they settle the sampler's kept set, and the claimed one.
 * `settled` is false when the top ran out first: the rest of the distribution must be read.
 */
function allowedTop(dist: Distribution, allowed: (t: Token) => boolean, sampling: Sampling, claimed: Token): Distribution & { settled: boolean } {
  const out = { tokens: [] as Token[], probs: [] as number[], settled: false };
  let seen = 0;
  for (let i = 0; i < dist.tokens.length; i++) {
    const t = dist.tokens[i]!;
    if (out.settled && out.tokens.includes(claimed)) break;
    seen += dist.probs[i]!;
    // Past the kept set, only the claimed token is still wanted (the grammar allows it: it was checked).
    if (out.settled ? t !== claimed : !allowed(t)) continue;
    out.tokens.push(t);
    out.probs.push(dist.probs[i]!);
    // The claimed token, if it comes after the kept set, weighs less than what was unseen when it
    // settled: it cannot move the cut.
    out.settled ||= settled(out.probs, 1 - seen, sampling);
  }
  return out;
}

/**
 * The chance the answer ends after its last token (any end-of-generation token), and the rank
 * of the first such token; under a grammar, out of what it allows (it ends only where complete).
 */
function endChance(model: LlamaModel, dist: Distribution, grammar: GrammarWalk | undefined): { endProbability: number; endRank: number } {
  let end = dist;
  if (grammar) {
    const allowed = keep(end, (t) => grammar.allows(t));
    const mass = allowed.probs.reduce((a, b) => a + b, 0);
    end = { tokens: allowed.tokens, probs: allowed.probs.map((p) => (mass > 0 ? p / mass : 0)) };
  }
  let endProbability = 0;
  let endRank = -1;
  for (let j = 0; j < end.tokens.length; j++) {
    if (!model.isEogToken(end.tokens[j])) continue;
    endProbability += end.probs[j]!;
    if (endRank < 0) endRank = j;
  }
  return { endProbability, endRank: endRank < 0 ? end.tokens.length : endRank };
}

/** A position's distribution as tokens and probabilities, most probable first. */
function distributionOf(next: { probabilities?: Map<Token, number>; logits?: Map<Token, number>; totalLogitWeight?: number } | undefined): { tokens: Token[]; probs: number[] } {
  if (next?.probabilities) return { tokens: [...next.probabilities.keys()], probs: [...next.probabilities.values()] };
  if (!next?.logits || !next.totalLogitWeight) throw new Error('the model returned no distribution for a scored position');
  const entries = [...next.logits].sort((a, b) => b[1] - a[1]);
  const max = entries[0]![1];
  return { tokens: entries.map((e) => e[0]), probs: entries.map((e) => Math.exp(e[1] - max) / next.totalLogitWeight!) };
}

export class ModelEngine implements InferenceEngine, AsyncDisposable {
  private chatWrapper: ChatWrapper | undefined;
  private grammars: GrammarCache | undefined;

  private constructor(
    readonly modelId: string,
    readonly modelPath: string,
    readonly modelHash: string,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    private readonly free: LlamaContextSequence[],
  ) {}

  static async load(llama: Llama, options: EngineOptions): Promise<ModelEngine> {
    const [modelHash, model] = await Promise.all([
      modelFileHash(options.modelPath),
      llama.loadModel({ modelPath: options.modelPath, gpuLayers: options.gpuLayers ?? 'auto' }),
    ]);
    try {
      const context = await model.createContext({
        contextSize: options.contextSize,
        sequences: options.sequences,
        ...(options.threads > 0 ? { threads: options.threads } : {}),
      });
      const sequences = Array.from({ length: options.sequences }, () => context.getSequence());
      return new ModelEngine(options.modelId, options.modelPath, modelHash, model, context, sequences);
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  get sequences(): number {
    return this.context.totalSequences;
  }

  get freeSequences(): number {
    return this.free.length;
  }

  /**
   * Renders a chat with the model's own template, ending where the assistant's answer starts (or
   * goes on, after a tool's result), with the tools it may call documented its own way.
   */
  renderChat(messages: readonly ChatMessage[], tools?: readonly ToolSpec[]): Token[] {
    const { history, open } = chatHistoryOf(messages);
    if (!open) history.push({ type: 'model', response: [] });
    return this.wrapper()
      .generateContextState({ chatHistory: history, ...(tools?.length ? { availableFunctions: functionsOf(tools) } : {}) })
      .contextText.tokenize(this.model.tokenizer);
  }

  /** Where a tool call starts in this model's answers: text from there on is calls, not content. */
  get toolCallMarker(): string {
    return callSyntaxOf(this.wrapper()).marker;
  }

  /** The calls `text` (an answer's text from its call marker on) makes, or undefined if it makes none. */
  parseToolCalls(text: string, tools: readonly ToolSpec[]): { name: string; arguments: string }[] | undefined {
    return parseToolCalls(text, callSyntaxOf(this.wrapper()), new Set(tools.map((t) => t.name)));
  }

  private wrapper(): ChatWrapper {
    // Resolved once per model: detecting the template from the GGUF took ~170 ms a call.
    this.chatWrapper ??= resolveChatWrapper(this.model);
    return this.chatWrapper;
  }

  renderPrompt(prompt: string): Token[] {
    return this.model.tokenize(prompt, false);
  }

  detokenize(tokens: readonly Token[], lastTokens?: readonly Token[]): string {
    return this.model.detokenize(tokens, false, lastTokens);
  }

  /**
   * What a request's sampling asks beyond the sampler (bias, penalties, grammar), for this model.
   * @throws EngineError BAD_INPUT naming the parameter this model cannot honour.
   */
  constraintsFor(sampling: Sampling): Promise<Constraints> {
    this.grammars ??= new GrammarCache(this.model, async (tools, parallel) =>
      this.model.llama.createGrammar({ grammar: await toolCallsGbnf(this.model.llama, callSyntaxOf(this.wrapper()), tools, parallel) }),
    );
    return Constraints.of(this.model, this.grammars, sampling);
  }

  /**
   * Generates on a free sequence. Text is released only once final: a trailing partial UTF-8
   * character or a possible start of a stop string is held back, so streamed text never has
   * to be taken back.
   */
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const prefix = request.prefixTokens ?? [];
    const { sampling } = request;
    const input = [...request.promptTokens, ...prefix];
    const budget = sampling.maxTokens - prefix.length;
    if (request.promptTokens.length + sampling.maxTokens > this.contextSize) {
      throw new EngineError(
        'PROMPT_TOO_LONG',
        `prompt (${request.promptTokens.length} tokens) + max_tokens (${sampling.maxTokens}) exceeds this model's context of ${this.contextSize} tokens`,
      );
    }
    const constraints = await this.constraintsFor(sampling);
    const grammar = constraints.startGrammar();
    // A continuation picks the grammar up where the delivered answer left it.
    for (const token of grammar ? prefix : []) {
      if (!grammar!.allows(token)) throw new EngineError('BAD_INPUT', 'the answer delivered so far does not follow the response format', 'response_format');
      grammar!.accept(token);
    }
    const sequence = this.free.pop();
    if (!sequence) throw new EngineError('NO_FREE_SEQUENCE', `all ${this.sequences} sequences of ${this.modelId} are busy`);

    const started = performance.now();
    let firstTokenAt = 0;
    const tokens: Token[] = [];
    const answer: Token[] = [...prefix];
    const top = request.logprobs?.top;
    const text = new StreamingText(this.model, constraints.stops, prefix, request.prefixText, constraints.trimWhitespaceSuffix, request.hold);
    let finishReason: FinishReason = 'length';
    try {
      // A continuation's prefix was drawn elsewhere: its log-probabilities are read back here.
      const logprobs = top === undefined ? undefined : prefix.length ? await this.forcedLogprobs(sequence, request.promptTokens, prefix, constraints, top) : [];
      await sequence.clearHistory();
      if (budget > 0) {
        const resolved = resolveSampling(sampling);
        const repeatPenalty = constraints.repeatPenalty(() => answer);
        const generator = sequence.evaluateWithMetadata(
          input,
          // Sampling under a grammar, llama.cpp draws first and applies the grammar only when the
          // draw breaks it: a mixture no verifier could model. Asking for the draw's confidence
          // makes it apply the grammar first (AddonSampler::sampleAndReleaseLock), so the answer
          // is drawn from the grammar's share of the distribution. Greedy picks the same either way.
          { confidence: (grammar !== undefined && resolved.temperature > 0) || top !== undefined, probabilities: top !== undefined && top > 0 },
          { ...samplerOptions(sampling, constraints, repeatPenalty), ...(grammar ? { grammarEvaluationState: grammar.state } : {}) },
        );
        finishReason = 'stop'; // unless the budget runs out first; EOG ends the loop without a yield
        for await (const step of generator) {
          // What was asked of each step is known only at run time; node-llama-cpp's type keys it on literals.
          const { token, confidence, probabilities } = step as { token: Token; confidence?: number; probabilities?: Map<Token, number> };
          if (request.signal?.aborted) throw new EngineError('ABORTED', 'generation cancelled');
          if (!firstTokenAt) firstTokenAt = performance.now();
          logprobs?.push(this.logprobEntry(token, answer, probabilities ?? new Map([[token, confidence ?? 0]]), top ?? 0));
          tokens.push(token);
          answer.push(token);
          const { piece, stopped } = text.push(token);
          request.onToken?.(token, piece);
          if (stopped) break;
          if (request.afterToken) await request.afterToken();
          if (tokens.length >= budget) {
            finishReason = 'length';
            break;
          }
        }
        if (request.signal?.aborted) throw new EngineError('ABORTED', 'generation cancelled');
      }
      // Text only: its tokens were already streamed, and a prefix's held text has no new token at all.
      const tail = text.finish();
      if (tail) request.onText?.(tail);
      return {
        tokens,
        text: text.released,
        finishReason,
        timeToFirstTokenMs: firstTokenAt ? firstTokenAt - started : 0,
        generationMs: performance.now() - started,
        ...(logprobs ? { logprobs: logprobs.slice(0, this.tokensOfText(answer, (request.prefixText ?? this.detokenize(prefix)).length + text.released.length)) } : {}),
      };
    } finally {
      this.free.push(sequence);
    }
  }

  /**
   * How many of the answer's tokens its text is made of: fewer than all when a stop string
   * (held back, never released) or trimmed whitespace ended it. Their log-probabilities are
   * the answer's; a stop string's are not.
   */
  private tokensOfText(answer: readonly Token[], textLength: number): number {
    if (this.model.detokenize(answer, false).length <= textLength) return answer.length;
    let low = 0;
    let high = answer.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.model.detokenize(answer.slice(0, mid), false).length >= textLength) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /**
   * Log-probabilities of an answer generated earlier (by a failed attempt, or this one before
   * its result was lost), read back by teacher forcing under the sampler that drew it.
   */
  async logprobsOf(promptTokens: Token[], answer: Token[], text: string, sampling: Sampling, top: number): Promise<TokenLogprob[]> {
    const constraints = await this.constraintsFor(sampling);
    const sequence = this.free.pop();
    if (!sequence) throw new EngineError('NO_FREE_SEQUENCE', `all ${this.sequences} sequences of ${this.modelId} are busy`);
    try {
      return (await this.forcedLogprobs(sequence, promptTokens, answer, constraints, top)).slice(0, this.tokensOfText(answer, text.length));
    } finally {
      this.free.push(sequence);
    }
  }

  /**
   * The sampler's own distribution at each answer position, as generation reads it: the same
   * options, so the same chain (bias, penalties, top-k, top-p, temperature). A grammar cannot
   * be given to this pass; its forbidden tokens are dropped afterwards and the rest renormalised,
   * which is exact at temperature 0 (the whole distribution) and close when sampling.
   */
  private async forcedLogprobs(sequence: LlamaContextSequence, promptTokens: Token[], answer: Token[], constraints: Constraints, top: number): Promise<TokenLogprob[]> {
    await sequence.clearHistory();
    const first = promptTokens.length - 1;
    const all = [...promptTokens, ...answer];
    const options = (j: number) => samplerOptions(constraints.sampling, constraints, constraints.repeatPenalty(() => answer.slice(0, j)));
    const out = await sequence.controlledEvaluate(all.slice(0, -1).map((t, i) => (i < first ? t : [t, { generateNext: { probabilities: true, options: options(i - first) } }])));
    const grammar = constraints.startGrammar();
    return answer.map((token, j) => {
      let probabilities = out[first + j]?.next.probabilities ?? new Map<Token, number>();
      if (grammar) {
        const allowed = [...probabilities].filter(([t]) => grammar.allows(t));
        const mass = allowed.reduce((a, [, p]) => a + p, 0);
        probabilities = new Map(allowed.map(([t, p]) => [t, mass > 0 ? p / mass : 0]));
        if (grammar.allows(token)) grammar.accept(token);
      }
      return this.logprobEntry(token, answer.slice(0, j), probabilities, top);
    });
  }

  /** One token's entry: its text after `before` (as the answer's text has it), its logprob, the top alternatives. */
  private logprobEntry(token: Token, before: readonly Token[], probabilities: ReadonlyMap<Token, number>, top: number): TokenLogprob {
    const history = before.slice(-8);
    const text = (t: Token) => this.model.detokenize([t], false, history);
    const lp = (p: number | undefined) => Math.max(-9999, Math.round(Math.log(p ?? 0) * 1e5) / 1e5);
    if (!top) return [text(token), lp(probabilities.get(token))];
    const alternatives: [string, number][] = [];
    // Most probable first: node-llama-cpp returns the map in that order.
    for (const [t, p] of probabilities) {
      if (alternatives.length >= top || p <= 0) break;
      alternatives.push([text(t), lp(p)]);
    }
    return [text(token), lp(probabilities.get(token)), alternatives];
  }

  /**
   * Teacher forcing: one forward pass over prompt + claimed tokens, reading the distribution
   * before each claimed token and after the last one under the request's constraints (bias,
   * penalties, grammar) but before the sampler's own truncation and temperature, from which
   * the judge derives any sampler's. The cost of a check is this prefill, not a regeneration.
   */
  async score(promptTokens: Token[], claimed: Token[], sampling: Sampling): Promise<ScoreReport> {
    if (promptTokens.length + claimed.length + 1 > this.contextSize) {
      throw new EngineError('PROMPT_TOO_LONG', `prompt + answer (${promptTokens.length + claimed.length} tokens) exceed this model's context of ${this.contextSize}`);
    }
    const constraints = await this.constraintsFor(sampling);
    const sequence = this.free.pop();
    if (!sequence) throw new EngineError('NO_FREE_SEQUENCE', `all ${this.sequences} sequences of ${this.modelId} are busy`);
    try {
      await sequence.clearHistory();
      const all = [...promptTokens, ...claimed];
      const first = promptTokens.length - 1;
      const resolved = resolveSampling(sampling);
      // The top of the distribution a position needs: the greedy choice, or the sampler's top-k.
      const need = resolved.temperature === 0 ? 1 : resolved.topK;
      const fullDistribution = resolved.temperature > 0 && resolved.topK <= 0;
      let grammar = constraints.startGrammar();
      // Under a grammar, a wider top: the tokens it forbids are dropped from it.
      const width = grammar ? Math.max(need, grammarScoringWidth) : need;
      // At answer position j, the options the node sampled the token at j with.
      const options = (j: number) => {
        const repeatPenalty = constraints.repeatPenalty(() => claimed.slice(0, j));
        if (!repeatPenalty && !constraints.tokenBias) return rawOptions;
        return { ...rawOptions, ...(constraints.tokenBias ? { tokenBias: constraints.tokenBias } : {}), ...(repeatPenalty ? { repeatPenalty } : {}) };
      };
      const ends = [this.model.tokens.eos, this.model.tokens.eot].filter((t): t is Token => t != null);
      // Only the top of each distribution is read back (plus the claimed token): building a
      // full-vocabulary map per position in JS cost more than the forward pass itself.
      const ask = (j: number) =>
        fullDistribution
          ? { probabilities: true, options: options(j) }
          : { logits: { filter: { tokens: j < claimed.length ? [claimed[j]!] : ends, includeTop: j < claimed.length || constraints.grammar ? width : 1 } }, totalLogitWeight: true, options: options(j) };
      const items: ControlledEvaluateInputItem[] = all.map((t, i) => (i < first ? t : [t, { generateNext: ask(i - first) }]));
      const out = await sequence.controlledEvaluate(items);

      const positions: PositionStat[] = [];
      const deferred: { j: number; grammar: GrammarWalk }[] = [];
      let grammarViolations = 0;
      for (let j = 0; j < claimed.length; j++) {
        let dist = distributionOf(out[first + j]?.next);
        const token = claimed[j]!;
        if (grammar && !grammar.allows(token)) {
          // A token the grammar forbids: a node that applied it could not have drawn it. What
          // follows is judged without the grammar, whose state ends here.
          grammarViolations++;
          grammar = undefined;
        } else if (grammar) {
          const walk = grammar;
          // The claimed token comes last when it is not among the top `width`: it is not part of
          // the top's order, and is added back after it.
          const top = allowedTop({ tokens: dist.tokens.slice(0, width), probs: dist.probs.slice(0, width) }, (t) => walk.allows(t), sampling, token);
          if (!top.tokens.includes(token)) {
            top.tokens.push(token);
            top.probs.push(dist.probs[dist.tokens.indexOf(token)] ?? 0);
          }
          // The whole distribution (top-k 0) is all there is; otherwise read the rest if the top ran out.
          if (!fullDistribution && !top.settled) deferred.push({ j, grammar: grammar.clone() });
          dist = fullDistribution ? keep(dist, (t) => walk.allows(t)) : top;
          grammar.accept(token);
        }
        const index = dist.tokens.indexOf(token);
        positions.push(positionStat(dist.probs, index < 0 ? dist.probs.length : index, sampling));
      }
      // Positions whose top held too few tokens the grammar allows: read their whole distribution.
      if (deferred.length) {
        await sequence.clearHistory();
        const at = new Set(deferred.map((d) => first + d.j));
        const again = await sequence.controlledEvaluate(all.map((t, i) => (at.has(i) ? [t, { generateNext: { logits: true, totalLogitWeight: true, options: options(i - first) } }] : t)));
        for (const { j, grammar: walk } of deferred) {
          const dist = allowedTop(distributionOf(again[first + j]?.next), (t) => walk.allows(t), sampling, claimed[j]!);
          const index = dist.tokens.indexOf(claimed[j]!);
          positions[j] = positionStat(dist.probs, index < 0 ? dist.probs.length : index, sampling);
        }
      }

      const { endProbability, endRank } = endChance(this.model, distributionOf(out[all.length - 1]?.next), grammar);
      const text = this.model.detokenize(claimed, false);
      return { positions, endProbability, endRank, stopStringSeen: constraints.stops.some((s) => text.includes(s)), grammarViolations };
    } finally {
      this.free.push(sequence);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
  }
}

