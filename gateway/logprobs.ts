/**
 * A node's log-probabilities (domain/inference.ts `TokenLogprob`) in OpenAI's two shapes: chat's
 * `logprobs.content` and legacy completions' parallel arrays.
 */
import type { TokenLogprob } from '../domain/inference.ts';

/** UTF-8 bytes of a token's text; a lone byte of a longer character decodes to U+FFFD and says so. */
const bytesOf = (text: string) => [...Buffer.from(text, 'utf8')];

export function chatLogprobs(entries: readonly TokenLogprob[]) {
  return {
    content: entries.map(([token, logprob, top]) => ({
      token,
      logprob,
      bytes: bytesOf(token),
      top_logprobs: (top ?? []).map(([alternative, lp]) => ({ token: alternative, logprob: lp, bytes: bytesOf(alternative) })),
    })),
    refusal: null,
  };
}

/** Legacy completions' shape; `top_logprobs` is null when no alternatives were asked. */
export function completionLogprobs(entries: readonly TokenLogprob[], alternatives: boolean) {
  let offset = 0;
  return {
    tokens: entries.map(([token]) => token),
    token_logprobs: entries.map(([, logprob]) => logprob),
    top_logprobs: alternatives ? entries.map(([, , top]) => Object.fromEntries(top ?? [])) : null,
    text_offset: entries.map(([token]) => {
      const at = offset;
      offset += token.length;
      return at;
    }),
  };
}
