import { describe, expect, it } from 'vitest';
import { JsonSchemaError, normalizeJsonSchema } from './json-schema.ts';

const person = {
  title: 'Person',
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 40, description: 'their name' },
    age: { type: 'integer' },
    email: { anyOf: [{ type: 'string' }, { type: 'null' }], default: null },
    role: { enum: ['admin', 'user'], type: 'string' },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
    born: { type: 'string', format: 'date' },
    home: { $ref: '#/$defs/Address' },
  },
  required: ['name', 'age'],
  additionalProperties: false,
  $defs: { Address: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('normalizeJsonSchema', () => {
  it('keeps what the grammar enforces and drops annotations', () => {
    expect(normalizeJsonSchema(person)).toEqual({
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 40 },
        age: { type: 'integer' },
        email: { oneOf: [{ type: 'string' }, { type: 'null' }] },
        role: { enum: ['admin', 'user'] },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 3 },
        born: { type: 'string', format: 'date' },
        home: { $ref: '#/$defs/Address' },
      },
      $defs: { Address: { type: 'object', properties: { city: { type: 'string' } } } },
    });
  });

  it.each([
    ['a person', person],
    ['any value', {}],
    ['an open object', { type: 'object' }],
    ['a nullable object', { type: ['object', 'null'], properties: { a: { type: 'boolean' } } }],
    ['primitive types', { type: ['string', 'number'] }],
    ['definitions', { $ref: '#/definitions/A', definitions: { A: { const: 1 } } }],
    ['a string root with defs', { type: 'string', $defs: { A: { type: 'null' } } }],
    ['a tuple', { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], maxItems: 2 }],
  ])('gives a normal form that is its own normal form: %s', (_what, schema) => {
    const normal = normalizeJsonSchema(schema);
    expect(normalizeJsonSchema(normal)).toEqual(normal);
  });

  it.each([
    [{ type: 'string', pattern: '^a' }, '/', /'pattern' is not supported/],
    [{ type: 'object', properties: { n: { type: 'number', minimum: 0 } } }, '/properties/n', /'minimum'/],
    [{ type: 'string', format: 'email' }, '/', /format/],
    [{ allOf: [{ type: 'string' }, { type: 'number' }] }, '/allOf', /exactly one/],
    [{ $ref: '#/$defs/Nope' }, '/$ref', /does not define/],
    [{ type: 'object', properties: {}, required: ['x'] }, '/required', /'x' is required/],
    [{ type: 'object', properties: { a: { type: 'null' }, b: { type: 'null' } }, maxProperties: 1 }, '/', /maxProperties/],
    [{ type: 'array', minItems: 3, maxItems: 2 }, '/', /no array fits/],
    [{ type: 'string', minLength: 3, maxLength: 2 }, '/', /no string fits/],
    [{ type: 'integer', enum: ['a'] }, '/', /not of 'type'/],
    [{ anyOf: [{ type: 'string' }], type: 'string' }, '/', /give the type in each alternative/],
    [{ type: 'object', properties: { a: { $defs: {} } } }, '/properties/a', /root schema only/],
    [{ type: 'nothing' }, '/', /not a JSON type/],
    ['string', '/', /must be an object/],
  ])('refuses %j at %s, saying why', (schema, pointer, message) => {
    let error: unknown;
    try {
      normalizeJsonSchema(schema);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(JsonSchemaError);
    expect((error as JsonSchemaError).pointer || '/').toBe(pointer);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses a schema too large or too deep', () => {
    expect(() => normalizeJsonSchema({ enum: ['x'.repeat(40_000)] })).toThrow(/limit is/);
    let deep: Record<string, unknown> = { type: 'null' };
    for (let i = 0; i < 40; i++) deep = { type: 'array', items: deep };
    expect(() => normalizeJsonSchema(deep)).toThrow(/deeper than/);
  });
});
