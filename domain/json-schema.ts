/**
 * The JSON Schemas a request may constrain an answer with (`response_format.json_schema`), in
 * one normal form: the subset node-llama-cpp turns into a grammar that enforces every keyword
 * in it. A keyword the grammar could not enforce (`pattern`, `minimum`, ...) is refused with
 * where it is, never dropped: an answer that parses but breaks the schema would fail the client
 * later and quietly.
 *
 * The grammar node-llama-cpp builds generates every property an object lists, and none it does
 * not, so its answers are a subset of what the schema allows (OpenAI's strict mode, whatever
 * `strict` says). Pure: the gateway checks a schema before dispatch; nodes and verifiers compile
 * the normal form it returns, so every one of them applies the same grammar.
 */
import { BaseError } from './errors.ts';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
/** A schema in normal form: what node-llama-cpp's `createGrammarForJsonSchema` takes. */
export type JsonSchema = { [key: string]: JsonValue };

export const jsonSchemaLimits = {
  /** Characters of the schema as JSON. */
  chars: 32_768,
  /** Nesting of subschemas. */
  depth: 32,
  /** Entries of `$defs`. */
  defs: 256,
} as const;

export class JsonSchemaError extends BaseError<'JSON_SCHEMA_UNSUPPORTED'> {
  override name = 'JsonSchemaError';
  constructor(
    /** JSON pointer of the offending subschema ('' for the root). */
    readonly pointer: string,
    /** What is wrong there. */
    readonly reason: string,
  ) {
    super(`${pointer || '/'}: ${reason}`, { code: 'JSON_SCHEMA_UNSUPPORTED' });
  }
}

/** Keywords that only describe: accepted anywhere and left out of the normal form. */
const annotations = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'readOnly', 'writeOnly', 'deprecated']);
const formats = new Set(['date-time', 'date', 'time']);
const primitiveTypes = new Set(['string', 'number', 'integer', 'boolean', 'null']);
/** What each type may carry besides `type`. */
const keywordsOf: Record<string, ReadonlySet<string>> = {
  string: new Set(['minLength', 'maxLength', 'format']),
  number: new Set(),
  integer: new Set(),
  boolean: new Set(),
  null: new Set(),
  object: new Set(['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties']),
  array: new Set(['items', 'prefixItems', 'minItems', 'maxItems']),
};
const combinators = new Set(['anyOf', 'oneOf', 'allOf', 'enum', 'const', '$ref']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPrimitive = (v: unknown): v is JsonPrimitive => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const count = (v: unknown, pointer: string, key: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 1_000_000) throw new JsonSchemaError(pointer, `'${key}' must be a non-negative integer`);
  return v;
};

/** The one subschema that allows any JSON value. */
const anyValue = (): JsonSchema => ({
  oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }],
});

class Normalizer {
  constructor(private readonly defNames: ReadonlySet<string>) {}

  schema(node: unknown, pointer: string, depth: number): JsonSchema {
    if (depth > jsonSchemaLimits.depth) throw new JsonSchemaError(pointer, `subschemas nest deeper than ${jsonSchemaLimits.depth}`);
    if (node === true) return anyValue();
    if (!isObject(node)) throw new JsonSchemaError(pointer, 'a schema must be an object');
    const keys = Object.keys(node).filter((k) => !annotations.has(k) && k !== '$defs' && k !== 'definitions');
    if (('$defs' in node || 'definitions' in node) && pointer !== '') throw new JsonSchemaError(pointer, "'$defs' is supported on the root schema only");
    const combinator = keys.filter((k) => combinators.has(k));
    if (combinator.length > 1) throw new JsonSchemaError(pointer, `'${combinator[0]}' and '${combinator[1]}' cannot be combined here`);
    if (combinator.length === 1) {
      const keyword = combinator[0]!;
      // `type` beside const or enum says what the values already are; beside anything else it
      // would have to hold in every alternative, which the grammar does not check.
      const literal = keyword === 'const' || keyword === 'enum';
      const others = keys.filter((k) => k !== keyword && !(literal && k === 'type'));
      if (others.length) throw new JsonSchemaError(pointer, `'${others[0]}' beside '${keyword}' is not supported${others[0] === 'type' ? '; give the type in each alternative' : ''}`);
      const out = this.combined(node, keyword, pointer, depth);
      if (literal && node['type'] !== undefined) {
        const values = keyword === 'const' ? [node['const']] : (node['enum'] as unknown[]);
        const types = Array.isArray(node['type']) ? (node['type'] as unknown[]) : [node['type']];
        const bad = values.find((v) => !types.some((t) => t === jsonType(v) || (t === 'number' && jsonType(v) === 'integer')));
        if (bad !== undefined) throw new JsonSchemaError(pointer, `${JSON.stringify(bad)} in '${keyword}' is not of 'type' ${JSON.stringify(node['type'])}`);
      }
      return out;
    }
    const type = node['type'];
    if (type === undefined) {
      // Keywords of one type without `type`: that type; nothing at all: any value.
      const implied = keys.some((k) => keywordsOf['object']!.has(k)) ? 'object' : keys.some((k) => keywordsOf['array']!.has(k)) ? 'array' : undefined;
      if (implied) return this.typed(node, implied, pointer, depth);
      if (keys.length) throw new JsonSchemaError(pointer, `'${keys[0]}' is not supported (the answer's grammar could not enforce it)`);
      return anyValue();
    }
    if (Array.isArray(type)) {
      if (!type.length || type.some((t) => typeof t !== 'string' || !(t in keywordsOf)) || new Set(type).size !== type.length) {
        throw new JsonSchemaError(pointer, "'type' must name distinct JSON types");
      }
      if (type.length === 1) return this.typed(node, type[0] as string, pointer, depth);
      const specific = keys.filter((k) => k !== 'type');
      // Primitive types with nothing more to say stay one schema; node-llama-cpp takes that form.
      if (type.every((t) => primitiveTypes.has(t as string)) && !specific.length) return { type: type as string[] };
      // Several types: one alternative each, carrying the keywords that apply to it.
      return { oneOf: (type as string[]).map((t) => this.typed(pick(node, t), t, pointer, depth)) };
    }
    if (typeof type !== 'string' || !(type in keywordsOf)) throw new JsonSchemaError(pointer, `'type' ${JSON.stringify(type)} is not a JSON type`);
    return this.typed(node, type, pointer, depth);
  }

  private combined(node: Record<string, unknown>, keyword: string, pointer: string, depth: number): JsonSchema {
    const value = node[keyword];
    const at = `${pointer}/${keyword}`;
    switch (keyword) {
      case 'const':
        if (!isPrimitive(value)) throw new JsonSchemaError(at, "'const' must be a string, number, boolean or null");
        return { const: value };
      case 'enum':
        if (!Array.isArray(value) || !value.length || !value.every(isPrimitive)) throw new JsonSchemaError(at, "'enum' must list strings, numbers, booleans or null");
        return { enum: value };
      case '$ref': {
        const name = typeof value === 'string' ? /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(value)?.[1] : undefined;
        if (name === undefined) throw new JsonSchemaError(at, "'$ref' must point into the root's '$defs' (#/$defs/<name>)");
        if (!this.defNames.has(name)) throw new JsonSchemaError(at, `'$ref' points to '${name}', which '$defs' does not define`);
        return { $ref: `#/$defs/${name}` };
      }
      case 'allOf':
        // One schema in allOf is that schema (pydantic writes a described $ref that way); more would need an intersection.
        if (!Array.isArray(value) || value.length !== 1) throw new JsonSchemaError(at, "'allOf' is supported with exactly one schema");
        return this.schema(value[0], `${at}/0`, depth + 1);
      default: {
        // anyOf and oneOf alike: the grammar produces one of the alternatives, which satisfies both.
        if (!Array.isArray(value) || !value.length) throw new JsonSchemaError(at, `'${keyword}' must list at least one schema`);
        const alternatives = value.map((s, i) => this.schema(s, `${at}/${i}`, depth + 1));
        return alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives };
      }
    }
  }

  private typed(node: Record<string, unknown>, type: string, pointer: string, depth: number): JsonSchema {
    const allowed = keywordsOf[type]!;
    for (const key of Object.keys(node)) {
      if (key === 'type' || annotations.has(key) || key === '$defs' || key === 'definitions') continue;
      if (!allowed.has(key)) throw new JsonSchemaError(pointer, `'${key}' is not supported for type '${type}' (the answer's grammar could not enforce it)`);
    }
    if (primitiveTypes.has(type) && type !== 'string') return { type };
    if (type === 'string') return this.string(node, pointer);
    if (type === 'array') return this.array(node, pointer, depth);
    return this.object(node, pointer, depth);
  }

  private string(node: Record<string, unknown>, pointer: string): JsonSchema {
    const out: JsonSchema = { type: 'string' };
    if (node['format'] !== undefined) {
      if (typeof node['format'] !== 'string' || !formats.has(node['format'])) throw new JsonSchemaError(pointer, `'format' ${JSON.stringify(node['format'])} is not supported; only ${[...formats].join(', ')}`);
      if (node['minLength'] !== undefined || node['maxLength'] !== undefined) throw new JsonSchemaError(pointer, "'format' with 'minLength' or 'maxLength' is not supported");
      return { ...out, format: node['format'] };
    }
    const min = node['minLength'] === undefined ? undefined : count(node['minLength'], pointer, 'minLength');
    const max = node['maxLength'] === undefined ? undefined : count(node['maxLength'], pointer, 'maxLength');
    if (min !== undefined && max !== undefined && max < min) throw new JsonSchemaError(pointer, "'maxLength' is below 'minLength': no string fits");
    return { ...out, ...(min !== undefined ? { minLength: min } : {}), ...(max !== undefined ? { maxLength: max } : {}) };
  }

  private array(node: Record<string, unknown>, pointer: string, depth: number): JsonSchema {
    const out: JsonSchema = { type: 'array' };
    if (node['items'] !== undefined) out['items'] = this.schema(node['items'], `${pointer}/items`, depth + 1);
    let prefix = 0;
    if (node['prefixItems'] !== undefined) {
      const items = node['prefixItems'];
      if (!Array.isArray(items)) throw new JsonSchemaError(`${pointer}/prefixItems`, "'prefixItems' must list schemas");
      out['prefixItems'] = items.map((s, i) => this.schema(s, `${pointer}/prefixItems/${i}`, depth + 1));
      prefix = items.length;
    }
    const min = node['minItems'] === undefined ? undefined : count(node['minItems'], pointer, 'minItems');
    const max = node['maxItems'] === undefined ? undefined : count(node['maxItems'], pointer, 'maxItems');
    if (max !== undefined && (max < (min ?? 0) || max < prefix)) throw new JsonSchemaError(pointer, "'maxItems' is below 'minItems' or the number of 'prefixItems': no array fits");
    if (min !== undefined) out['minItems'] = min;
    if (max !== undefined) out['maxItems'] = max;
    return out;
  }

  private object(node: Record<string, unknown>, pointer: string, depth: number): JsonSchema {
    const out: JsonSchema = { type: 'object' };
    const props = node['properties'];
    const names: string[] = [];
    if (props !== undefined) {
      if (!isObject(props)) throw new JsonSchemaError(`${pointer}/properties`, "'properties' must map names to schemas");
      const normal: JsonSchema = {};
      for (const [name, schema] of Object.entries(props)) {
        normal[name] = this.schema(schema, `${pointer}/properties/${escapePointer(name)}`, depth + 1);
        names.push(name);
      }
      out['properties'] = normal;
    }
    const required = node['required'];
    if (required !== undefined) {
      if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) throw new JsonSchemaError(`${pointer}/required`, "'required' must list property names");
      // Every listed property is generated; a required one with no schema never would be.
      const missing = (required as string[]).find((r) => !names.includes(r));
      if (missing !== undefined) throw new JsonSchemaError(`${pointer}/required`, `'${missing}' is required but has no schema in 'properties'`);
    }
    const additional = node['additionalProperties'];
    if (additional === true || (additional === undefined && props === undefined)) {
      // An object with no properties and no word on others: any object, as JSON Schema reads it.
      out['additionalProperties'] = true;
    } else if (additional !== undefined && additional !== false) {
      out['additionalProperties'] = this.schema(additional, `${pointer}/additionalProperties`, depth + 1);
    }
    const min = node['minProperties'] === undefined ? undefined : count(node['minProperties'], pointer, 'minProperties');
    const max = node['maxProperties'] === undefined ? undefined : count(node['maxProperties'], pointer, 'maxProperties');
    if (max !== undefined && max < Math.max(names.length, min ?? 0)) {
      throw new JsonSchemaError(pointer, "'maxProperties' is below 'minProperties' or the number of 'properties' (all of which an answer holds)");
    }
    if (min !== undefined && min > names.length && out['additionalProperties'] === undefined) {
      throw new JsonSchemaError(pointer, "'minProperties' asks for more properties than the object may have");
    }
    if (min !== undefined) out['minProperties'] = min;
    if (max !== undefined) out['maxProperties'] = max;
    return out;
  }
}

/** The keywords of `node` that apply to `type`, for one alternative of a multi-type schema. */
function pick(node: Record<string, unknown>, type: string): Record<string, unknown> {
  const out: Record<string, unknown> = { type };
  for (const [k, v] of Object.entries(node)) if (keywordsOf[type]!.has(k)) out[k] = v;
  // A keyword no listed type takes is still an error, reported by the type that is checked.
  for (const k of Object.keys(node)) {
    if (k !== 'type' && !annotations.has(k) && !Object.values(keywordsOf).some((s) => s.has(k))) out[k] = node[k];
  }
  return out;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const escapePointer = (name: string) => name.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * The normal form of a schema a client sent: the same for the same schema, so every node and
 * verifier compiles the same grammar.
 * @throws JsonSchemaError naming the first keyword the grammar could not enforce.
 */
export function normalizeJsonSchema(schema: unknown): JsonSchema {
  let json: string | undefined;
  try {
    json = JSON.stringify(schema);
  } catch {
    json = undefined;
  }
  if (json === undefined) throw new JsonSchemaError('', 'the schema is not JSON');
  if (json.length > jsonSchemaLimits.chars) throw new JsonSchemaError('', `the schema is ${json.length} characters as JSON; the limit is ${jsonSchemaLimits.chars}`);
  if (!isObject(schema)) throw new JsonSchemaError('', 'a schema must be an object');
  const rawDefs = schema['$defs'] ?? schema['definitions'];
  if (rawDefs !== undefined && !isObject(rawDefs)) throw new JsonSchemaError('/$defs', "'$defs' must map names to schemas");
  if (schema['$defs'] !== undefined && schema['definitions'] !== undefined) throw new JsonSchemaError('', "give '$defs' or 'definitions', not both");
  const defEntries = Object.entries(rawDefs ?? {});
  if (defEntries.length > jsonSchemaLimits.defs) throw new JsonSchemaError('/$defs', `more than ${jsonSchemaLimits.defs} definitions`);
  const normalizer = new Normalizer(new Set(defEntries.map(([name]) => name)));
  const root = normalizer.schema(schema, '', 0);
  if (!defEntries.length) return root;
  const defs: JsonSchema = {};
  for (const [name, def] of defEntries) defs[name] = normalizer.schema(def, `/$defs/${escapePointer(name)}`, 1);
  // node-llama-cpp reads $defs beside $ref, oneOf, objects and arrays; wrap any other root in a oneOf.
  const carrier = '$ref' in root || 'oneOf' in root || root['type'] === 'object' || root['type'] === 'array' ? root : { oneOf: [root] };
  return { ...carrier, $defs: defs };
}
