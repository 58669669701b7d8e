import { describe, expect, it } from 'vitest';
import { chatHistoryOf, parseToolCalls, type CallSyntax } from './tools.ts';

const generic: CallSyntax = {
  marker: '||call:',
  prefix: '||call: ',
  optionalPrefixSpace: true,
  paramsPrefix: () => '(',
  suffix: () => ')',
  sectionPrefix: '',
  betweenCalls: '\n',
};
const qwenLike: CallSyntax = {
  marker: '<tool_call>',
  prefix: '<tool_call>\n{"name": "',
  optionalPrefixSpace: true,
  paramsPrefix: () => '", "arguments": ',
  suffix: () => '}\n</tool_call>',
  sectionPrefix: '',
  betweenCalls: '\n',
};
const names = new Set(['get_weather', 'get', 'get_time']);

describe('parseToolCalls', () => {
  it('reads one call and several, in the generic and a JSON-wrapped syntax, the longest tool name first', () => {
    expect(parseToolCalls('||call: get_weather({"city": "Paris"})', generic, names)).toEqual([{ name: 'get_weather', arguments: '{"city": "Paris"}' }]);
    expect(parseToolCalls('||call: get_time({})\n||call: get({"a": [1, ")"]})', generic, names)).toEqual([
      { name: 'get_time', arguments: '{}' },
      { name: 'get', arguments: '{"a": [1, ")"]}' },
    ]);
    expect(parseToolCalls('<tool_call>\n{"name": "get_time", "arguments": {"tz": "UTC"}}\n</tool_call>', qwenLike, names)).toEqual([{ name: 'get_time', arguments: '{"tz": "UTC"}' }]);
  });

  it('keeps the complete calls before one cut short', () => {
    expect(parseToolCalls('||call: get_time({})\n||call: get_weather({"ci', generic, names)).toEqual([{ name: 'get_time', arguments: '{}' }]);
  });

  it('finds no call in what only looks like one: an unknown tool, arguments that are not JSON', () => {
    for (const text of ['||call: launch({})', '||call: get_time({nope})', '||call: get_time', '||call get_time({})']) expect(parseToolCalls(text, generic, names)).toBeUndefined();
  });
});

describe('chatHistoryOf', () => {
  it('puts calls, their results and the answer after them in one model turn, left open after a result', () => {
    const { history, open } = chatHistoryOf([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'get_weather', arguments: '{"city":"Oslo"}' }, { id: 'b', name: 'get_time', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'b', content: '12:00' },
      { role: 'tool', toolCallId: 'a', content: '{"temp": 3}' },
    ]);
    expect(open).toBe(true);
    expect(history).toEqual([
      { type: 'system', text: 'Be brief.' },
      { type: 'user', text: 'Weather?' },
      {
        type: 'model',
        response: [
          { type: 'functionCall', name: 'get_weather', params: { city: 'Oslo' }, result: { temp: 3 } },
          { type: 'functionCall', name: 'get_time', params: {}, result: '12:00' },
        ],
      },
    ]);
    expect(chatHistoryOf([{ role: 'user', content: 'Hi' }]).open).toBe(false);
  });
});
