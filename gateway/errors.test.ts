import { describe, expect, it } from 'vitest';
import { BaseError } from '../domain/errors.ts';
import { ApiKeyError } from './keys/keys.ts';
import { OperatorActionError } from './operator-actions.ts';
import { NodeIdTakenError } from './registration/register.ts';
import { RegistrationError } from './registration/verify.ts';
import { ApiError, errorCodes, fromDomain, statusOf, toApiError } from './errors.ts';

/** What each code answers: written out here, so a change to the map is a change to this test. */
const expected: Record<string, [number, string]> = {
  invalid_body: [400, 'invalid_request_error'],
  unsupported_parameter: [400, 'invalid_request_error'],
  context_length_exceeded: [400, 'invalid_request_error'],
  invalid_api_key: [401, 'authentication_error'],
  registration_rejected: [401, 'authentication_error'],
  signature_rejected: [401, 'authentication_error'],
  forbidden: [403, 'invalid_request_error'],
  not_found: [404, 'invalid_request_error'],
  model_not_found: [404, 'invalid_request_error'],
  method_not_allowed: [405, 'invalid_request_error'],
  conflict: [409, 'invalid_request_error'],
  body_too_large: [413, 'invalid_request_error'],
  rate_limit_exceeded: [429, 'rate_limit_error'],
  insufficient_quota: [429, 'rate_limit_error'],
  internal_error: [500, 'server_error'],
  no_node_available: [503, 'server_error'],
  upstream_unavailable: [503, 'server_error'],
  upstream_timeout: [504, 'server_error'],
  fallback_unavailable: [503, 'server_error'],
  fallback_error: [502, 'server_error'],
  fallback_timeout: [504, 'server_error'],
};

describe('the one map from error code to HTTP status and OpenAI error type', () => {
  it.each(errorCodes)('%s answers its status with the OpenAI error body', (code) => {
    const err = new ApiError(code, `because ${code}`, 'p');
    expect([err.status, statusOf(code)]).toEqual([expected[code]![0], expected[code]![0]]);
    expect(err.body()).toEqual({ error: { message: `because ${code}`, type: expected[code]![1], param: 'p', code } });
  });

  it('lists every code this test expects, and no other', () => {
    expect([...errorCodes].sort()).toEqual(Object.keys(expected).sort());
  });

  it('answers every domain error by its code: the client mistakes with a 4xx, never a 500', () => {
    const cases: [BaseError, number, string, string | null][] = [
      [new ApiKeyError('KEY_LABEL_INVALID', 'label must be 1 to 64 characters'), 400, 'invalid_body', 'label'],
      [new ApiKeyError('KEY_INVALID', 'invalid API key'), 401, 'invalid_api_key', null],
      [new ApiKeyError('KEY_RATE_LIMITED', 'slow down', 7), 429, 'rate_limit_exceeded', null],
      [new ApiKeyError('KEY_QUOTA_EXCEEDED', 'quota', 60), 429, 'insufficient_quota', null],
      [new RegistrationError('REGISTRATION_INVALID', 'bad'), 400, 'invalid_body', null],
      [new RegistrationError('REGISTRATION_TOO_LONG_LIVED', 'long'), 400, 'invalid_body', null],
      [new RegistrationError('REGISTRATION_EXPIRED', 'expired'), 401, 'registration_rejected', null],
      [new RegistrationError('REGISTRATION_BAD_SIGNATURE', 'forged'), 401, 'registration_rejected', null],
      [new RegistrationError('REGISTRATION_REPLAYED', 'again'), 409, 'conflict', null],
      [new NodeIdTakenError('n-1'), 409, 'conflict', null],
      [new OperatorActionError('bad', { code: 'ACTION_INVALID' }), 400, 'invalid_body', null],
      [new OperatorActionError('long', { code: 'ACTION_TOO_LONG_LIVED' }), 400, 'invalid_body', null],
      [new OperatorActionError('expired', { code: 'ACTION_EXPIRED' }), 401, 'signature_rejected', null],
      [new OperatorActionError('forged', { code: 'ACTION_BAD_SIGNATURE' }), 401, 'signature_rejected', null],
      [new OperatorActionError('again', { code: 'ACTION_REPLAYED' }), 401, 'signature_rejected', null],
      [new BaseError('no such model', { code: 'MODEL_UNKNOWN' }), 404, 'model_not_found', 'model'],
    ];
    expect(cases.map(([e]) => e.code).sort()).toEqual(Object.keys(fromDomain).sort());
    for (const [err, status, code, param] of cases) {
      // Wrapped, as a driver or a workflow wraps it: found by walking the causes.
      const api = toApiError(new Error('wrapper', { cause: err }));
      expect([api.status, api.code, api.param, api.message], err.code).toEqual([status, code, param, err.shortMessage]);
    }
    expect(toApiError(new ApiKeyError('KEY_RATE_LIMITED', 'slow down', 7)).headers).toEqual({ 'retry-after': '7' });
  });

  it('hides an unknown error behind a 500 that says nothing of it', () => {
    const api = toApiError(new BaseError('secret detail', { code: 'SOMETHING_ELSE' }));
    expect(api.body()).toEqual({ error: { message: 'The gateway hit an internal error; it has been logged', type: 'server_error', param: null, code: 'internal_error' } });
  });
});
