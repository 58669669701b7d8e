/**
 * What a request asks of generation beyond the sampler's settings: logit_bias, presence and
 * frequency penalties, and a grammar from its response_format. Built from the request's
 * Sampling alone, the same way for the node that generates and for the verifier that
 * re-scores, so both apply exactly the same constraint (domain/verification.ts).
 */
import {
  LlamaGrammarEvaluationState,
  TokenBias,
  type LlamaContextSequenceRepeatPenalty,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type { AnswerGrammar, Sampling } from '../../domain/inference.ts';
import type { JsonSchema } from '../../domain/json-schema.ts';
import { BaseError } from '../../domain/errors.ts';

export class EngineError extends BaseError<'PROMPT_TOO_LONG' | 'NO_FREE_SEQUENCE' | 'ABORTED' | 'BAD_INPUT'> {
  override name = 'EngineError';
  constructor(
    code: EngineError['code'],
    message: string,
    /** For BAD_INPUT: the API parameter at fault, so the client is told which. */
    readonly param?: string,
  ) {
    super(message, { code });
  }
}

/**
 * node-llama-cpp 3.22 applies a grammar natively and accepts each token it samples; a node
 * continuing another's answer, and a verifier forcing a claimed one, must test and accept
 * tokens they did not sample. The two calls for that sit on its internal sampler binding
 * (LlamaChat uses them the same way); workers/node/engine.test.ts pins them.
 */
interface GrammarBinding {
  canBeNextTokenForGrammarEvaluationState(state: unknown, token: Token): boolean;
  acceptGrammarEvaluationStateToken(state: unknown, token: Token): void;
}

/** A grammar's state along an answer: which tokens may come next, and taking one. */
export class GrammarWalk {
  private constructor(
    private readonly binding: GrammarBinding,
    readonly state: LlamaGrammarEvaluationState,
  ) {}

  static start(model: LlamaModel, grammar: LlamaGrammar): GrammarWalk {
    const binding = (model.llama as unknown as { _bindings: { AddonSampler: GrammarBinding } })._bindings.AddonSampler;
    return new GrammarWalk(binding, new LlamaGrammarEvaluationState({ model, grammar }));
  }

  private get native(): unknown {
    return (this.state as unknown as { _state: unknown })._state;
  }

  /** An end-of-generation token is allowed only where the grammar is complete. */
  allows(token: Token): boolean {
    return this.binding.canBeNextTokenForGrammarEvaluationState(this.native, token);
  }

  accept(token: Token): void {
    this.binding.acceptGrammarEvaluationStateToken(this.native, token);
  }

  clone(): GrammarWalk {
    return new GrammarWalk(this.binding, this.state.clone());
  }
}

/** Compiled grammars by what they are made from: compiling a schema's grammar takes a while. */
export class GrammarCache {
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();

  constructor(
    private readonly model: LlamaModel,
    /** The grammar of tool calls, in the model's own function-calling syntax (workers/node/tools.ts). */
    private readonly toolCalls: (tools: { name: string; parameters: JsonSchema }[], parallel: boolean) => Promise<LlamaGrammar>,
    private readonly capacity = 64,
  ) {}

  get(spec: AnswerGrammar): Promise<LlamaGrammar> {
    const key = JSON.stringify(spec);
    let grammar = this.grammars.get(key);
    if (grammar) {
      // Most recently used last: the first entry is the one to evict.
      this.grammars.delete(key);
    } else {
      const llama = this.model.llama;
      const built = spec.type === 'json' ? llama.getGrammarFor('json') : spec.type === 'json_schema' ? llama.createGrammarForJsonSchema(spec.schema as never) : this.toolCalls(spec.tools, spec.parallel);
      const param = spec.type === 'tool_calls' ? 'tools' : 'response_format';
      grammar = built.catch((err: unknown) => {
        this.grammars.delete(key);
        if (err instanceof EngineError) throw err;
        throw new EngineError('BAD_INPUT', `${param}: the grammar could not be built: ${(err as Error).message}`, param);
      });
    }
    this.grammars.set(key, grammar);
    if (this.grammars.size > this.capacity) this.grammars.delete(this.grammars.keys().next().value!);
    return grammar;
  }
}

/** The constraints of one request on one model. */
export class Constraints {
  private constructor(
    readonly sampling: Sampling,
    readonly grammar: LlamaGrammar | undefined,
    readonly tokenBias: TokenBias | undefined,
    /** The request's stop strings, and the grammar's own (after a JSON answer, blank lines). */
    readonly stops: readonly string[],
    /** The grammar's answer ends without trailing whitespace. */
    readonly trimWhitespaceSuffix: boolean,
    private readonly model: LlamaModel,
  ) {}

  /** @throws EngineError BAD_INPUT naming the parameter this model cannot honour. */
  static async of(model: LlamaModel, grammars: GrammarCache, sampling: Sampling): Promise<Constraints> {
    const tokenBias = biasOf(model, sampling.logitBias);
    const grammar = sampling.grammar ? await grammars.get(sampling.grammar) : undefined;
    // A trigger is text (a LlamaText, or a plain string) or tokens; llama.cpp's JSON grammars end with blank lines.
    const triggers = (grammar?.stopGenerationTriggers ?? []).map((t) => (Array.isArray(t) ? model.detokenize(t.filter((x): x is Token => typeof x === 'number')) : t.toString()));
    return new Constraints(sampling, grammar, tokenBias, [...(sampling.stop ?? []), ...triggers.filter((t) => t.length)], grammar?.trimWhitespaceSuffix ?? false, model);
  }

  /**
   * The penalties, over the answer's tokens so far (`answer` is read at each position). The
   * window is the whole answer, fixed per request so llama.cpp's penalty sampler keeps its state.
   */
  repeatPenalty(answer: () => Token[]): LlamaContextSequenceRepeatPenalty | undefined {
    const { presencePenalty = 0, frequencyPenalty = 0, maxTokens } = this.sampling;
    if (!presencePenalty && !frequencyPenalty) return undefined;
    return { punishTokens: answer, penalty: 1, presencePenalty, frequencyPenalty, maxPunishTokens: maxTokens };
  }

  /** A new grammar walk from the start of the answer, or undefined without a grammar. */
  startGrammar(): GrammarWalk | undefined {
    return this.grammar ? GrammarWalk.start(this.model, this.grammar) : undefined;
  }
}

function biasOf(model: LlamaModel, logitBias: Record<string, number> | undefined): TokenBias | undefined {
  if (!logitBias || !Object.keys(logitBias).length) return undefined;
  const vocabulary = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? Infinity;
  const bias = TokenBias.for(model);
  for (const [key, value] of Object.entries(logitBias)) {
    const token = Number(key) as Token;
    if (!Number.isInteger(token) || token < 0 || token >= vocabulary) {
      throw new EngineError('BAD_INPUT', `logit_bias: ${key} is not a token id of this model (its vocabulary has ${vocabulary} tokens)`, 'logit_bias');
    }
    // node-llama-cpp never biases an end-of-generation token; refuse rather than drop it.
    if (model.isEogToken(token)) throw new EngineError('BAD_INPUT', `logit_bias: token ${key} ends the answer, and its bias cannot be set`, 'logit_bias');
    bias.set(token, { logit: value });
  }
  return bias;
}
