/**
 * The one base of this project's errors, in the style of viem's `BaseError`: a short message a
 * person can act on, optional details, the cause it wraps, and a stable `code` that code (the
 * gateway's status map, the edge, the CLI) branches on instead of a class name. Pure: workflows
 * may import it.
 */

export interface BaseErrorOptions<Code extends string = string> {
  code: Code;
  /** More of what went wrong than the short message says, for logs; never shown to API clients. */
  details?: string | undefined;
  cause?: unknown;
}

export class BaseError<Code extends string = string> extends Error {
  override name = 'BaseError';
  readonly code: Code;
  /** The message without details: what an API or CLI shows. */
  readonly shortMessage: string;
  readonly details: string | undefined;

  constructor(shortMessage: string, options: BaseErrorOptions<Code>) {
    // The message stays the short one: clients and tests read it, details go to logs.
    super(shortMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.shortMessage = shortMessage;
    this.details = options.details;
  }

  /**
   * This error and its causes, outermost first, down to the first for which `fn` holds, or the
   * innermost when no `fn` is given; undefined when `fn` holds for none.
   */
  walk(fn?: (err: unknown) => boolean): unknown {
    return walk(this, fn);
  }
}

/**
 * Walks any error's `cause` chain (a Temporal `WorkflowFailedError → ActivityFailure →
 * ApplicationFailure`, a driver error, one of ours). With `fn`: the first error it holds for,
 * else undefined. Without: the innermost cause. Bounded, so a cyclic chain cannot hang it.
 */
export function walk(err: unknown, fn?: (err: unknown) => boolean): unknown {
  let current = err;
  for (let depth = 0; depth < 32; depth++) {
    if (fn?.(current)) return current;
    const next = (current as { cause?: unknown } | null | undefined)?.cause;
    if (next === undefined || next === null || next === current) return fn ? undefined : current;
    current = next;
  }
  return fn ? undefined : current;
}

/** The first error in the chain that is a BaseError with a code (one of `codes` when given). */
export function coded<Code extends string>(err: unknown, codes?: readonly Code[]): BaseError<Code> | undefined {
  return walk(err, (e) => e instanceof BaseError && (!codes || codes.includes(e.code as Code))) as BaseError<Code> | undefined;
}

/**
 * A base for an error whose only state is its code: `class XError extends codedError('X_CODE')
 * { override name = 'XError'; }`, thrown as `new XError(message, { cause })`.
 */
export function codedError<Code extends string>(code: Code) {
  return class extends BaseError<Code> {
    constructor(message: string, options: Omit<BaseErrorOptions<Code>, 'code'> = {}) {
      super(message, { ...options, code });
    }
  };
}
