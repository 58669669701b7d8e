/**
 * The router's pure scoring: given the live candidates for one model (heartbeats from the
 * NATS KV bucket joined with each node actor's projection in MongoDB), drop the ones that
 * must not get the request and rank the rest.
 *
 * Pure and deterministic: no I/O, no clock, no randomness, only arithmetic on its inputs, so
 * the request workflow may call it and a replay ranks exactly as the first run did. The
 * "randomness" that spreads load is a hash of (requestId, nodeId).
 *
 * Built for large networks: one pass over the candidates, top-K selection in a small array
 * instead of a full sort, and strings (reasons, rejections) built only for what is returned.
 * `bench/router.ts` measures it.
 */
import type { Heartbeat } from './heartbeat.ts';
import type { ChatMessage } from './inference.ts';
import { isRoutable, type NodeState } from './reputation.ts';

/**
 * One node that serves the requested model, as the route activity assembles it. One
 * candidate per node: the KV bucket is keyed by node id, so the caller's list is unique.
 */
export interface Candidate {
  nodeId: string;
  /** The operator's 0x address (any case). */
  operator: string;
  /** From the node actor's projection in MongoDB; a node with no record is 'probation'. Only {@link isRoutable} states pass. */
  state: NodeState;
  /** From the heartbeat. */
  status: Heartbeat['status'];
  /** sha256 of the node's GGUF for this model (64 hex, with or without 0x). */
  modelHash: string;
  /** Tokens per sequence (prompt + answer) for this model. */
  contextSize: number;
  maxParallel: number;
  inFlight: number;
  freeSlots: number;
  /** From the heartbeat; 0 = unknown (idle since start). */
  recentTokensPerSecond: number;
  /** EMA of time-to-first-token from past requests (MongoDB); undefined = unknown. */
  latencyMs?: number | undefined;
  /** 0..1 from MongoDB; a node with no record has 0.5. */
  reputation: number;
  /** now - heartbeat.at, computed by the caller (which owns the clock). */
  heartbeatAgeMs: number;
  /**
   * Requests this router sent the node since its last heartbeat, which cannot count them yet:
   * they take slots the heartbeat still shows free. 0 when unknown.
   */
  assignedSinceHeartbeat?: number | undefined;
  /** The router's recent requests for this model sent to the node (a decaying count); 0 when none. */
  recentRequests?: number | undefined;
  /** Requests the node has completed, from its record; 0 = no record yet (explored); undefined = not known. */
  requestsServed?: number | undefined;
}

/** What the router needs to know about the request. */
export interface RouteRequest {
  requestId: string;
  modelId: string;
  /** An estimate (see estimatePromptTokens) until the node tokenizes. */
  promptTokens: number;
  maxTokens: number;
  /** When the catalog pins the file: nodes with another file are refused. 64 hex, 0x optional. */
  expectedModelHash?: string | undefined;
  /** Nodes that already failed this request (the retry path), or that the caller wants to avoid. */
  excludeNodes?: readonly string[] | undefined;
  /** E.g. the operator whose answer a spot-check verifies: it must not check itself. */
  excludeOperators?: readonly string[] | undefined;
}

/** A candidate that passed the filters, best first. */
export interface RankedCandidate {
  nodeId: string;
  operator: string;
  /** Higher is better; roughly 0..1 (see the weights below). Only comparable within one call. */
  score: number;
  /** Short, human-readable: "3/4 slots free, 812 tok/s, reputation 0.92, 120 ms ttft". */
  reason: string;
}

/** The ranking plus why others were left out (the first `maxRejectedReported` of them). */
export interface RouteDecision {
  ranked: RankedCandidate[];
  rejected: { nodeId: string; why: string }[];
  /**
   * Candidates that passed every filter but had no free slot. When none is ranked and some are
   * busy, the request waits in the model's shared queue (served in order by whichever node frees
   * a slot first) rather than on one busy node's own queue.
   */
  busy: number;
}

/** Options for rankCandidates. */
export interface RankOptions {
  /** How many candidates to return, best first (default 3: the first choice and two fallbacks). */
  limit?: number | undefined;
  /** Heartbeats older than this are stale (default 15 000 ms, the KV bucket's TTL). */
  stalenessMs?: number | undefined;
}

/** Default number of ranked candidates: the chosen node and two fallbacks before the shared queue. */
export const defaultRouteLimit = 3;
/** Matches heartbeatTtlMs in heartbeat.ts (kept as a literal so this module imports only types). */
export const defaultStalenessMs = 15_000;
/** Rejections are for logs and the Web UI: a few explain the decision, 10 000 would drown it. */
export const maxRejectedReported = 20;

// ---------------------------------------------------------------------------------------
// Score weights. The score is a weighted sum of terms that each lie in [0, 1], minus a state
// penalty, plus a small jitter:
//
//   score = 0.40 * reputation          (trust matters most: nodes are untrusted, and a node that
//                                       fails spot-checks or times out must lose traffic fast)
//         + 0.25 * freeSlots/maxParallel (load: an idle node answers now, a busy one queues)
//         + 0.15 * throughput term     (tps / (tps + 200); unknown = 0.5, as if 200 tok/s)
//         + 0.15 * latency term        (500 / (500 + ttftMs); unknown = 0.5, as if 500 ms)
//         - 0.05 if probation          (modest: new nodes still win when others are busier or
//                                       slower, so they can build a record)
//         - 0.15 if degraded           (kept as a fallback, but behind healthy nodes)
//         + 0.04 * jitter in [0, 1)    (load spreading, see spreadJitter)
//         + 0.30 * (capacity share - recent share)   (balance: a node that took more than its
//                                       share of this router's recent requests, by slots, gives
//                                       way; equal nodes alternate even under sequential traffic)
//         + 1 for a node with no record, on an `exploreShare` of requests (exploration: a new
//                                       node earns a record, and its operator rewards, without
//                                       waiting for a burst; bounded, since it is still untested)
//
// The throughput and latency terms are saturating ratios x/(x+k) rather than logs or a
// normalisation against the best candidate: they need no second pass over the set, they give
// diminishing returns (1000 vs 2000 tok/s matters less than 20 vs 200), and they use only
// +, / which IEEE 754 makes bit-identical on every machine, so a replay elsewhere ranks alike.
// The jitter (0.04) is smaller than any meaningful difference in the other terms (a quarter
// of the slots is 0.0625, 0.1 of reputation is 0.04), so it only reorders near-equals.
// ---------------------------------------------------------------------------------------
const wReputation = 0.4;
const wSlots = 0.25;
const wThroughput = 0.15;
const wLatency = 0.15;
const wJitter = 0.04;
const wBalance = 0.3;
/** The share of requests on which a node with no record is put first (when it has a free slot). */
export const exploreShare = 0.2;
const probationPenalty = 0.05;
const degradedPenalty = 0.15;
/** tok/s at which the throughput term is 0.5. */
const throughputHalf = 200;
/** ms of time-to-first-token at which the latency term is 0.5. */
const latencyHalf = 500;
/** The neutral value for an unknown throughput or latency: neither rewarded nor punished. */
const unknownTerm = 0.5;
/** Above this limit, keeping a sorted window costs more than collecting and sorting. */
const insertionLimit = 64;

// Rejection codes: the hot loop returns a small integer and builds the `why` string only for
// the few rejections that are reported.
const pass = 0;
const rExcludedNode = 1;
const rExcludedOperator = 2;
const rState = 3;
const rDraining = 5;
const rStale = 6;
const rModelHash = 7;
const rContext = 8;
const rNoSlots = 9;

const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** FNV-1a 32-bit over UTF-16 code units (identical to the byte version for ASCII ids), continued from `hash`. */
function fnv1a(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, fnvPrime);
  }
  return h;
}

/**
 * MurmurHash3's finaliser. FNV-1a alone barely mixes its last character into the high bits,
 * and node ids often differ only there ("node-1", "node-2"): this spreads that difference
 * over all 32 bits so the jitter is close to uniform.
 */
function fmix32(hash: number): number {
  let h = hash;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The FNV state after requestId and a separator (so "ab"+"c" and "a"+"bc" differ). */
function requestSeed(requestId: string): number {
  return Math.imul(fnv1a(fnvOffset, requestId) ^ 0xff, fnvPrime);
}

/**
 * The load-spreading jitter for one (request, node) pair: a number in [0, 1), uniform over
 * request ids, and always the same for the same pair (a replayed workflow routes alike).
 */
export function spreadJitter(requestId: string, nodeId: string): number {
  return fmix32(fnv1a(requestSeed(requestId), nodeId)) / 4294967296;
}

/** Strips 0x and lowercases, so a registration's bytes32 and a heartbeat's bare hex compare equal. */
function normaliseHash(hash: string): string {
  const lower = hash.toLowerCase();
  return lower.startsWith('0x') ? lower.slice(2) : lower;
}

/** Clamp to [0, 1]; NaN becomes 0 (an unusable number earns nothing). */
function unit(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0;
}

/** Free slots less the requests sent since the heartbeat that reported them. */
function freeSlotsNow(c: Candidate): number {
  return c.freeSlots - (c.assignedSinceHeartbeat ?? 0);
}

function slotFraction(c: Candidate): number {
  return c.maxParallel > 0 ? unit(freeSlotsNow(c) / c.maxParallel) : 0;
}

function throughputTerm(tps: number): number {
  return tps > 0 && tps < Infinity ? tps / (tps + throughputHalf) : unknownTerm;
}

function latencyKnown(ms: number | undefined): ms is number {
  return ms !== undefined && ms >= 0 && ms < Infinity;
}

function latencyTerm(ms: number | undefined): number {
  return latencyKnown(ms) ? latencyHalf / (latencyHalf + ms) : unknownTerm;
}

function statePenalty(state: NodeState): number {
  // Only routable states get here: active has no penalty, degraded the larger one.
  return state === 'active' ? 0 : state === 'degraded' ? degradedPenalty : probationPenalty;
}

/** The score without jitter; see the weights above. */
function baseScore(c: Candidate): number {
  return (
    wReputation * unit(c.reputation) +
    wSlots * slotFraction(c) +
    wThroughput * throughputTerm(c.recentTokensPerSecond) +
    wLatency * latencyTerm(c.latencyMs) -
    statePenalty(c.state)
  );
}

/**
 * The balance term: positive for a node that had less than its share (by slots) of the
 * router's recent requests, negative for one that had more; 0 before there is any history.
 */
function balanceTerm(c: Candidate, totals: { recent: number; slots: number }): number {
  if (!(totals.recent > 0) || !(totals.slots > 0)) return 0;
  const recent = c.recentRequests ?? 0;
  return wBalance * (unit(c.maxParallel / totals.slots) - unit(recent / totals.recent));
}

/** Per-call constants of the hard filters, computed once rather than per candidate. */
interface FilterContext {
  need: number;
  stalenessMs: number;
  expectedHash: string | undefined;
  excludeNodes: ReadonlySet<string> | undefined;
  excludeOperators: ReadonlySet<string> | undefined;
}

/**
 * The first hard filter a candidate fails, or `pass`. Comparisons are written as "not good"
 * (`!(x > 0)`) so that a NaN from a broken record rejects instead of slipping through.
 */
function rejectCode(c: Candidate, f: FilterContext): number {
  if (f.excludeNodes !== undefined && f.excludeNodes.has(c.nodeId)) return rExcludedNode;
  if (f.excludeOperators !== undefined && f.excludeOperators.has(c.operator.toLowerCase())) return rExcludedOperator;
  // The lifecycle's own rule (suspended, offline, retired, or a state this code does not know).
  if (!isRoutable(c.state)) return rState;
  if (c.status !== 'serving') return rDraining;
  if (!(c.heartbeatAgeMs <= f.stalenessMs)) return rStale;
  // The fast path compares as is; only a mismatch pays for normalising (0x, case).
  if (f.expectedHash !== undefined && c.modelHash !== f.expectedHash && normaliseHash(c.modelHash) !== f.expectedHash) {
    return rModelHash;
  }
  if (!(c.contextSize >= f.need)) return rContext;
  if (!(freeSlotsNow(c) > 0)) return rNoSlots;
  return pass;
}

function describeRejection(code: number, c: Candidate, request: RouteRequest, f: FilterContext): string {
  switch (code) {
    case rExcludedNode:
      return 'node excluded by the request';
    case rExcludedOperator:
      return `operator ${c.operator} excluded by the request`;
    case rState:
      return `node is ${String(c.state).slice(0, 32)}`;
    case rDraining:
      return `node is ${c.status}`;
    case rStale:
      return `heartbeat ${Math.round(c.heartbeatAgeMs)} ms old (limit ${f.stalenessMs} ms)`;
    case rModelHash:
      return `model file ${c.modelHash.slice(0, 12)}… is not the pinned ${f.expectedHash?.slice(0, 12)}…`;
    case rContext:
      return `context ${c.contextSize} tokens < ${request.promptTokens} prompt + ${request.maxTokens} max tokens`;
    case rNoSlots:
      return `no free slots (${c.maxParallel - freeSlotsNow(c)}/${c.maxParallel} in flight)`;
    default:
      return 'rejected';
  }
}

function explain(c: Candidate): string {
  const tps = c.recentTokensPerSecond > 0 && c.recentTokensPerSecond < Infinity ? `${Math.round(c.recentTokensPerSecond)} tok/s` : 'tok/s unknown';
  const ttft = latencyKnown(c.latencyMs) ? `${Math.round(c.latencyMs)} ms ttft` : 'ttft unknown';
  const state = c.state === 'active' ? '' : `, ${c.state}`;
  const explore = c.requestsServed === 0 ? ', no record yet' : '';
  return `${freeSlotsNow(c)}/${c.maxParallel} slots free, ${tps}, reputation ${unit(c.reputation).toFixed(2)}, ${ttft}${state}${explore}`;
}

/** Strictly better: higher score, or on an exact tie the smaller node id (order-independent). */
function better(scoreA: number, idA: string, scoreB: number, idB: string): boolean {
  return scoreA > scoreB || (scoreA === scoreB && idA < idB);
}

function resolveLimit(limit: number | undefined): number {
  if (limit === undefined) return defaultRouteLimit;
  if (limit === Infinity) return limit;
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  return limit;
}

/**
 * Ranks the candidates for one request: drops those that must not get it (hard filters, each
 * with a reason) and returns the best `limit`, best first, with a short reason each.
 *
 * Hard filters, in order: excluded node, excluded operator (case-insensitive), a state that is
 * not routable (suspended, offline, retired; see `isRoutable`), draining, heartbeat older than
 * `stalenessMs`, a model file other than the pinned `expectedModelHash`, a context smaller than promptTokens + maxTokens (admission: a node
 * must never run out of context mid-answer), no free slot.
 *
 * Deterministic: the same candidates and request give the same decision whatever the input
 * order (exact score ties go to the smaller node id). O(n) time for the default limit.
 *
 * @throws RangeError when `limit` is not a non-negative integer (or Infinity, meaning all).
 */
export function rankCandidates(candidates: readonly Candidate[], request: RouteRequest, options: RankOptions = {}): RouteDecision {
  const limit = resolveLimit(options.limit);
  const stalenessMs = options.stalenessMs ?? defaultStalenessMs;
  const filter: FilterContext = {
    need: request.promptTokens + request.maxTokens,
    stalenessMs,
    expectedHash: request.expectedModelHash === undefined ? undefined : normaliseHash(request.expectedModelHash),
    excludeNodes: request.excludeNodes?.length ? new Set(request.excludeNodes) : undefined,
    excludeOperators: request.excludeOperators?.length ? new Set(request.excludeOperators.map((o) => o.toLowerCase())) : undefined,
  };
  const seed = requestSeed(request.requestId);
  const rejected: RouteDecision['rejected'] = [];
  let busy = 0;
  // Exploration draws from the request id, like the jitter: a replay decides alike.
  const explore = spreadJitter(request.requestId, '~explore') < exploreShare;
  const totals = { recent: 0, slots: 0 };
  for (const c of candidates) {
    totals.recent += c.recentRequests ?? 0;
    totals.slots += c.maxParallel > 0 ? c.maxParallel : 0;
  }

  // Best-first window of the kept candidates: parallel arrays of candidate index and score.
  // For small limits it stays sorted by insertion (a new entry usually fails the one
  // comparison against the worst kept and costs nothing more); large limits collect and sort.
  const windowed = limit <= insertionLimit;
  const keptIndex: number[] = [];
  const keptScore: number[] = [];

  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const code = rejectCode(c, filter);
    if (code !== pass) {
      if (code === rNoSlots) busy++;
      if (rejected.length < maxRejectedReported) rejected.push({ nodeId: c.nodeId, why: describeRejection(code, c, request, filter) });
      continue;
    }
    if (limit === 0) continue;
    const score = baseScore(c) + balanceTerm(c, totals) + (explore && c.requestsServed === 0 ? 1 : 0) + (wJitter * fmix32(fnv1a(seed, c.nodeId))) / 4294967296;
    if (!windowed) {
      keptIndex.push(i);
      keptScore.push(score);
      continue;
    }
    let at = keptIndex.length;
    if (at === limit) {
      // Full: a newcomer must beat the worst kept one to get in.
      if (!better(score, c.nodeId, keptScore[at - 1]!, candidates[keptIndex[at - 1]!]!.nodeId)) continue;
      at--;
    } else {
      keptIndex.push(i);
      keptScore.push(score);
    }
    // Shift worse entries down one place and drop the newcomer where it belongs.
    while (at > 0 && better(score, c.nodeId, keptScore[at - 1]!, candidates[keptIndex[at - 1]!]!.nodeId)) {
      keptIndex[at] = keptIndex[at - 1]!;
      keptScore[at] = keptScore[at - 1]!;
      at--;
    }
    keptIndex[at] = i;
    keptScore[at] = score;
  }

  let order = keptIndex.map((_, k) => k);
  if (!windowed) {
    order.sort((a, b) => {
      const ca = candidates[keptIndex[a]!]!;
      const cb = candidates[keptIndex[b]!]!;
      return better(keptScore[a]!, ca.nodeId, keptScore[b]!, cb.nodeId) ? -1 : better(keptScore[b]!, cb.nodeId, keptScore[a]!, ca.nodeId) ? 1 : 0;
    });
    order = order.slice(0, limit);
  }

  const ranked = order.map((k): RankedCandidate => {
    const c = candidates[keptIndex[k]!]!;
    return { nodeId: c.nodeId, operator: c.operator, score: keptScore[k]!, reason: explain(c) };
  });
  return { ranked, rejected, busy };
}

/**
 * Tokens a chat template adds per message (role markers, separators: ChatML and Llama 3 use
 * 4-6) plus room for BOS and the assistant prefix: rounded up on purpose.
 */
export const messageOverheadTokens = 8;

/**
 * A conservative (over-)estimate of the tokens one message's text takes, for admission before
 * the node's tokenizer is known: the router refuses nodes whose context is smaller than
 * prompt + max_tokens, so over-estimating only costs a little headroom, while under-estimating
 * sends a request to a node that runs out of context mid-answer.
 *
 * - ASCII letters, spaces and punctuation: ceil(count / 3). English averages about 4 characters
 *   per token and code about 3-3.5 on common tokenizers.
 * - ASCII digits: 1 token each (SentencePiece tokenizers such as Llama 2's and Mistral's split
 *   numbers into single digits).
 * - Other characters below U+0800 (accented Latin, Greek, Cyrillic, Arabic, Hebrew): 1 each.
 * - U+0800 and above (CJK, Indic, ...): 2 each; each half of a surrogate pair (emoji, rare
 *   CJK): 1, so 2 per such character. A tokenizer without the script in its vocabulary falls
 *   back to UTF-8 bytes (3-4 per character); counting bytes would be the strict upper bound
 *   but would refuse long CJK prompts that modern tokenizers fit with room to spare.
 * - Plus `messageOverheadTokens` for the chat template.
 *
 * For a chat, sum it over the messages (see estimateChatPromptTokens). It is an estimate, not
 * a bound for adversarial text: the node still enforces its context.
 */
export function estimatePromptTokens(text: string): number {
  let ascii = 0;
  let heavy = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      if (code >= 0x30 && code <= 0x39) heavy++;
      else ascii++;
    } else if (code < 0x800 || (code >= 0xd800 && code <= 0xdfff)) {
      heavy++;
    } else {
      heavy += 2;
    }
  }
  return Math.ceil(ascii / 3) + heavy + messageOverheadTokens;
}

/** estimatePromptTokens summed over a chat's messages (each brings its template overhead). */
export function estimateChatPromptTokens(messages: readonly Pick<ChatMessage, 'content'>[]): number {
  let total = 0;
  for (const message of messages) total += estimatePromptTokens(message.content);
  return total;
}
