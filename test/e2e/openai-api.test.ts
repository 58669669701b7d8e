/**
 * The OpenAI API in depth, with the official `openai` client against the real network: model
 * retrieval, sampling parameters honoured or refused, structured output, logprobs.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNetwork, type Network } from './harness.ts';

let net: Network;
let client: OpenAI;

beforeAll(async () => {
  net = await startNetwork({ requestsPerMinute: 1000, tokensPerDay: 10_000_000 });
  await net.startNode('api', ['--context-size', '1024']);
  const issued = await fetch(`${net.url}/v1/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  expect(issued.status).toBe(201);
  client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: ((await issued.json()) as { key: string }).key, maxRetries: 0 });
});

afterAll(async () => {
  await net?.stop();
});

/** The API error a call ends with. */
async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as InstanceType<typeof OpenAI.APIError>;
}

describe('models', () => {
  it('retrieves a model as OpenAI does, with its live capacity', async () => {
    const model = await client.models.retrieve('gitblock-tiny');
    expect(model).toMatchObject({ id: 'gitblock-tiny', object: 'model', owned_by: 'gitblock-network', gitblock: { nodes: 1, max_context: 1024 } });
    // A catalog model no node serves now exists all the same.
    expect(await client.models.retrieve('smollm2-135m')).toMatchObject({ id: 'smollm2-135m', gitblock: { nodes: 0 } });
  });

  it('404s an unknown model in OpenAI’s error shape', async () => {
    const error = await apiError(client.models.retrieve('gpt-17'));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model', type: 'invalid_request_error' });
    expect(error.message).toMatch(/gpt-17/);
  });
});
