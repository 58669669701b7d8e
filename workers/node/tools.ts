/**
 * Tool calling with a model's own chat template and function-calling syntax, as node-llama-cpp's
 * chat wrapper for the model defines them: OpenAI's messages as the wrapper's chat history
 * (calls and their results inside the model's turn), the grammar that makes an answer one or
 * more calls with arguments valid for their schemas (tool_choice `required` or named), and the
 * parse of calls out of an answer's text. A node and its verifiers derive all of it from the
 * same model file, so they render, constrain and parse alike.
 */
import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelFunctions, ChatWrapper, Llama, LlamaText } from 'node-llama-cpp';
import type { ChatMessage, ToolSpec } from '../../domain/inference.ts';
import type { JsonSchema } from '../../domain/json-schema.ts';
import { EngineError } from '../../domain/engine.ts';

/** The wrapper's call syntax as plain text: `prefix name paramsPrefix {json} suffix`. */
export interface CallSyntax {
  /** Text that marks the start of a call: text after it is the call, not the answer's content. */
  marker: string;
  prefix: string;
  optionalPrefixSpace: boolean;
  paramsPrefix(name: string): string;
  suffix(name: string): string;
  /** Before the first of several calls, and between two. */
  sectionPrefix: string;
  betweenCalls: string;
}

type TextLike = string | LlamaText | undefined;

/** A wrapper's text; a special token (which a grammar cannot write) makes tool calling unavailable. */
function plain(value: TextLike): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  const json = value.toJSON();
  return (typeof json === 'string' ? [json] : json)
    .map((v) => {
      if (typeof v === 'string') return v;
      if (v.type === 'specialTokensText') return v.value;
      throw new EngineError('BAD_INPUT', `tools: this model's function-calling syntax holds a special token (${v.value}), which a grammar cannot write`, 'tools');
    })
    .join('');
}

export function callSyntaxOf(wrapper: ChatWrapper): CallSyntax {
  const { call, parallelism } = wrapper.settings.functions;
  const prefix = plain(call.prefix);
  const paramsPrefix = plain(call.paramsPrefix);
  const suffix = plain(call.suffix);
  const alternatives = [prefix, ...(call.prefixAlternateMatches ?? []).map((m) => plain(m))].map((m) => m.trim()).filter((m) => m.length);
  if (!alternatives.length) throw new EngineError('BAD_INPUT', "tools: this model's chat template has no function-calling syntax", 'tools');
  return {
    // The shortest form the wrapper accepts: a call written without the optional space still starts there.
    marker: alternatives.reduce((a, b) => (b.length < a.length ? b : a)),
    prefix,
    optionalPrefixSpace: call.optionalPrefixSpace,
    paramsPrefix: (name) => paramsPrefix.replaceAll('{{functionName}}', name),
    suffix: (name) => suffix.replaceAll('{{functionName}}', name),
    sectionPrefix: plain(parallelism?.call.sectionPrefix),
    // Wrappers without a parallel form write calls one after another; a line between them here.
    betweenCalls: parallelism ? plain(parallelism.call.betweenCalls) : '\n',
  };
}

/** A tool message's content as the call's result: its JSON if it is JSON, else the text. */
function resultOf(content: string): unknown {
  try {
    return JSON.parse(content);
  } catch {
    return content;
  }
}

/**
 * OpenAI's messages as a chat wrapper's history. An assistant message, the tool messages that
 * answer its calls, and the assistant messages after them are one model turn (node-llama-cpp
 * puts each call's result right after it, inside the turn). `open` says the last turn is the
 * model's own, to continue: after a tool result, the model answers on in the same turn.
 */
export function chatHistoryOf(messages: readonly ChatMessage[]): { history: ChatHistoryItem[]; open: boolean } {
  const results = new Map(messages.filter((m) => m.role === 'tool').map((m) => [m.toolCallId, m.content]));
  const history: ChatHistoryItem[] = [];
  let turn: Extract<ChatHistoryItem, { type: 'model' }> | undefined;
  for (const m of messages) {
    if (m.role === 'system' || m.role === 'user') {
      history.push(m.role === 'system' ? { type: 'system', text: m.content } : { type: 'user', text: m.content });
      turn = undefined;
      continue;
    }
    if (m.role === 'tool') continue; // placed with its call
    if (!turn) {
      turn = { type: 'model', response: [] };
      history.push(turn);
    }
    if (m.content) turn.response.push(m.content);
    for (const call of m.toolCalls ?? []) {
      const functionCall: ChatModelFunctionCall = { type: 'functionCall', name: call.name, params: resultOf(call.arguments), result: resultOf(results.get(call.id) ?? '') };
      turn.response.push(functionCall);
    }
  }
  const last = messages.at(-1);
  return { history, open: last !== undefined && (last.role === 'tool' || (last.role === 'assistant' && !!last.toolCalls?.length)) };
}

/** The functions as a wrapper documents them to the model. */
export function functionsOf(tools: readonly ToolSpec[]): ChatModelFunctions {
  return Object.fromEntries(tools.map((t) => [t.name, { ...(t.description ? { description: t.description } : {}), params: t.parameters as never }]));
}

/** A GBNF string literal. */
function literal(text: string): string {
  return `"${[...text].map((c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : c)).join('')}"`;
}

/**
 * Renames every rule of a GBNF grammar with a prefix, outside string literals, character
 * classes and repetition counts: two schemas' grammars then live side by side in one.
 */
function prefixRules(gbnf: string, prefix: string): string[] {
  const lines = gbnf.split('\n').filter((l) => l.trim().length);
  const names = new Set(lines.map((l) => /^([\w-]+)\s*::=/.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  return lines.map((line) => {
    let out = '';
    for (let i = 0; i < line.length; ) {
      const c = line[i]!;
      if (c === '"' || c === '[') {
        const close = c === '"' ? '"' : ']';
        let j = i + 1;
        while (j < line.length && line[j] !== close) j += line[j] === '\\' ? 2 : 1;
        out += line.slice(i, j + 1);
        i = j + 1;
      } else if (c === '{') {
        const j = line.indexOf('}', i);
        out += line.slice(i, j + 1);
        i = j + 1;
      } else if (/[\w-]/.test(c)) {
        let j = i;
        while (j < line.length && /[\w-]/.test(line[j]!)) j++;
        const word = line.slice(i, j);
        out += names.has(word) ? `${prefix}${word}` : word;
        i = j;
      } else {
        out += c;
        i++;
      }
    }
    return out;
  });
}

/** node-llama-cpp's JSON grammars end with blank lines (its stop trigger); inside a call they must not. */
const jsonTrailer = /\s*"\\n\\n\\n\\n"\s*\[\\n\]\*\s*$/;

/**
 * The GBNF of an answer that is one call, or with `parallel` one or more, of these tools in the
 * wrapper's syntax, each call's arguments a JSON value its schema allows (node-llama-cpp's own
 * schema grammar). The model's end of generation ends the calls.
 */
export async function toolCallsGbnf(llama: Llama, syntax: CallSyntax, tools: readonly { name: string; parameters: JsonSchema }[], parallel: boolean): Promise<string> {
  if (!tools.length) throw new EngineError('BAD_INPUT', 'tools: a call is required, but there is no tool to call', 'tools');
  const rules: string[] = [];
  const alternatives: string[] = [];
  for (const [i, tool] of tools.entries()) {
    const params = prefixRules((await llama.createGrammarForJsonSchema(tool.parameters as never)).grammar, `t${i}-`);
    const root = params.findIndex((l) => l.startsWith(`t${i}-root ::=`));
    if (root < 0 || !jsonTrailer.test(params[root]!)) throw new Error(`unexpected JSON grammar from node-llama-cpp for tool ${tool.name}`);
    params[root] = params[root]!.replace(jsonTrailer, '');
    rules.push(...params);
    alternatives.push(`${literal(tool.name)} ${literal(syntax.paramsPrefix(tool.name))} t${i}-root ${literal(syntax.suffix(tool.name))}`);
  }
  const call = `call ::= ${syntax.optionalPrefixSpace ? '" "? ' : ''}${literal(syntax.prefix)} ( ${alternatives.join(' | ')} )`;
  const root = parallel ? `root ::= ${literal(syntax.sectionPrefix)} call ( ${literal(syntax.betweenCalls)} call )*` : 'root ::= call';
  return [root, call, ...rules].join('\n');
}

/** The end of the JSON value that starts at `from` (after whitespace), or -1. */
function jsonEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
      if (depth < 0) return -1;
    } else if (depth === 0 && /[,)\s]/.test(c)) return i;
  }
  return depth === 0 && !inString ? i : -1;
}

/**
 * The calls written from the start of `text` (what followed the call marker in an answer, the
 * marker included), in the wrapper's syntax, to known tools with arguments that are JSON; or
 * undefined when it is not calls after all, and stays the answer's text. What follows complete
 * calls and is not one (a call cut by max_tokens) is dropped: after a call, a model waits for
 * its result.
 */
export function parseToolCalls(text: string, syntax: CallSyntax, names: ReadonlySet<string>): { name: string; arguments: string }[] | undefined {
  const calls: { name: string; arguments: string }[] = [];
  readCalls(text, syntax, names, calls);
  return calls.length ? calls : undefined;
}

/** Reads calls into `calls` while they parse; true when the whole text was calls. */
function readCalls(text: string, syntax: CallSyntax, names: ReadonlySet<string>, calls: { name: string; arguments: string }[]): boolean {
  let at = 0;
  const skip = (s: string) => {
    if (s && text.startsWith(s, at)) at += s.length;
  };
  skip(syntax.sectionPrefix);
  while (at < text.length) {
    while (at < text.length && /\s/.test(text[at]!)) at++;
    if (at >= text.length) break;
    const prefix = [syntax.prefix, syntax.prefix.trim(), syntax.marker].find((p) => p && text.startsWith(p, at));
    if (!prefix) return false;
    at += prefix.length;
    while (at < text.length && text[at] === ' ' && syntax.optionalPrefixSpace) at++;
    const name = [...names].filter((n) => text.startsWith(n + syntax.paramsPrefix(n), at)).sort((a, b) => b.length - a.length)[0];
    if (name === undefined) return false;
    at += name.length + syntax.paramsPrefix(name).length;
    const end = jsonEnd(text, at);
    if (end < 0) return false;
    const args = text.slice(at, end).trim();
    try {
      JSON.parse(args);
    } catch {
      return false;
    }
    at = end;
    if (!text.startsWith(syntax.suffix(name), at)) return false;
    at += syntax.suffix(name).length;
    calls.push({ name, arguments: args });
    skip(syntax.betweenCalls);
  }
  return true;
}
