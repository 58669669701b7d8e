/**
 * The one place that reads the environment. Everything else receives a `Config` (or a part
 * of it) as an argument, so tests and tools can build one without touching `process.env`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_GENESIS, EPOCH_SECONDS } from '../domain/emission.ts';
import { localNetworkAsEnv, readLocalNetwork } from './local-network.ts';
import { BaseError } from '../domain/errors.ts';

const port = z.coerce.number().int().min(0).max(65535);
const url = (protocols: string[]) =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

export const configSchema = z.object({
  /** host:port of the Temporal frontend (gRPC). */
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[\w.-]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:7233')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /** When unset, the local stack starts a MongoDB-wire server of its own. */
  MONGODB_URI: url(['mongodb:', 'mongodb+srv:']).optional(),
  MONGODB_DB: z.string().regex(/^[\w-]{1,63}$/, 'letters, digits, _ and - only').default('gitblock'),
  /** May carry credentials, `nats://user:pass@host:4222`; or give NATS_USER and NATS_PASSWORD. */
  NATS_URL: url(['nats:', 'tls:']).default('nats://127.0.0.1:4222'),
  /** NATS refuses anonymous clients outside a bare dev server: the stack and compose set these. */
  NATS_USER: z.string().regex(/^\S+$/, 'no spaces').optional(),
  NATS_PASSWORD: z.string().optional(),
  CHAIN_RPC_URL: url(['http:', 'https:']).default('http://127.0.0.1:8545'),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: port.default(8080),
  /** Where the edge (the one endpoint GPU nodes reach) listens; 0.0.0.0 in production. */
  EDGE_HOST: z.string().min(1).default('127.0.0.1'),
  EDGE_PORT: port.default(7443),
  /** The name node sessions are signed for: one per network, so a session cannot be used at another's edge. */
  EDGE_AUDIENCE: z.string().min(1).max(128).default('gitblock-edge'),
  /** PEM files of the edge's TLS certificate chain and key; without them it listens in plaintext (local only). */
  EDGE_TLS_CERT_FILE: z.string().min(1).optional(),
  EDGE_TLS_KEY_FILE: z.string().min(1).optional(),
  /** Where the local stack keeps its data and logs (gitignored). */
  GITBLOCK_DATA_DIR: z.string().min(1).default('.data'),
  /** Where GGUF models are cached: outside any clone, so every checkout and CI run shares them. */
  GITBLOCK_MODEL_DIR: z.string().min(1).default(join(homedir(), '.cache', 'gitblock', 'models')),
  /** Where the stack's tools (Temporal CLI, FerretDB, nats-server) are installed. */
  GITBLOCK_TOOLS_DIR: z.string().min(1).default(join(homedir(), '.cache', 'gitblock', 'bin')),
  /** The model `npm start`'s own node serves (the tests choose the tiny fixture). */
  GITBLOCK_START_MODEL: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'a model id such as smollm2-135m').default('smollm2-135m'),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  // gitblock-node settings; its command-line flags take precedence, and it validates them all
  // together (workers/node/options.ts), so here they are plain optional strings.
  GITBLOCK_GATEWAY_URL: z.string().optional(),
  /** host:port of the edge a node joins through (`gitblock-node start --edge`). */
  GITBLOCK_EDGE: z.string().optional(),
  /** PEM file of the CA that signed the edge's certificate, when it is not one the system trusts. */
  GITBLOCK_EDGE_CA: z.string().optional(),
  GITBLOCK_NODE_MODELS: z.string().optional(),
  GITBLOCK_NODE_GPU: z.string().optional(),
  GITBLOCK_NODE_MAX_PARALLEL: z.string().optional(),
  GITBLOCK_NODE_KEY_FILE: z.string().optional(),
  GITBLOCK_NODE_ID: z.string().optional(),
  GITBLOCK_NODE_CONFIG: z.string().optional(),
  GITBLOCK_NODE_CONTEXT_SIZE: z.string().optional(),
  GITBLOCK_NODE_THREADS: z.string().optional(),
  GITBLOCK_NODE_MAX_MEMORY: z.string().optional(),
  /** Seconds, like `--shutdown-grace`. */
  GITBLOCK_NODE_SHUTDOWN_GRACE: z.string().optional(),
  /** The node's own state (operator key, node id). */
  GITBLOCK_NODE_HOME: z.string().min(1).default(join(homedir(), '.gitblock')),
  // Settlement (issue 6). The control worker posts epoch roots only when both files are given.
  /** JSON written by `tsx contracts/cli.ts deploy` (or `npm start`): where the distributor is. */
  GITBLOCK_DEPLOYMENT_FILE: z.string().min(1).optional(),
  /** File holding the settler's private key (0x + 64 hex digits, mode 0600): it posts epoch roots. */
  GITBLOCK_SETTLER_KEY_FILE: z.string().min(1).optional(),
  /** Unix seconds when epoch 0 starts; epochs are weeks from here. */
  GITBLOCK_GENESIS: z.coerce.number().int().min(0).default(DEFAULT_GENESIS),
  /** Epoch length; a week in production, shorter only for local experiments. */
  GITBLOCK_EPOCH_SECONDS: z.coerce.number().int().min(1).default(EPOCH_SECONDS),
  /** Blocks a posted root must have (the posting block counts as 1) before an epoch is settled. */
  GITBLOCK_SETTLEMENT_CONFIRMATIONS: z.coerce.number().int().min(1).max(256).default(1),
  /**
   * Comma-separated operator addresses whose active nodes verify spot checks before they have a
   * record of passed checks of their own: a new network's root of trust (domain/verifiers.ts
   * says why). Empty: only nodes with such a record verify, so a network where none has one
   * yet leaves every check unverified (the rewards stay).
   */
  GITBLOCK_SEED_VERIFIERS: z
    .string()
    .transform((list) => list.split(',').map((a) => a.trim()).filter((a) => a !== ''))
    .pipe(z.array(z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x address (40 hex digits); separate several with commas')))
    .default([]),
  // The fallback provider (issue 11, the Phase-1 proxy): an OpenAI-compatible upstream that
  // answers what no node can serve. Unset: such requests get 503 no_node_available.
  /** Base URL of the upstream, ending where `/chat/completions` is appended, e.g. https://api.openai.com/v1. */
  GITBLOCK_FALLBACK_URL: url(['http:', 'https:']).optional(),
  /** Sent as `Authorization: Bearer ...`; a local upstream may need none. */
  GITBLOCK_FALLBACK_API_KEY: z.string().regex(/^\S+$/, 'no spaces').optional(),
  /** `network-id=upstream-name` pairs, comma-separated; a model not listed is asked for by its own id. */
  GITBLOCK_FALLBACK_MODELS: z
    .string()
    .transform((list) => list.split(',').map((p) => p.trim()).filter((p) => p !== ''))
    .pipe(z.array(z.string().regex(/^[^=\s]+=[^=\s]+$/, 'must be network-id=upstream-name pairs, separated by commas')))
    .transform((pairs) => Object.fromEntries(pairs.map((p) => p.split('=') as [string, string])))
    .default({}),
  /** Requests the fallback serves at once, over this gateway process; more get 503 fallback_unavailable. */
  GITBLOCK_FALLBACK_MAX_CONCURRENT: z.coerce.number().int().min(1).max(10_000).default(8),
  /** Requests the fallback starts per minute, over this gateway process. */
  GITBLOCK_FALLBACK_REQUESTS_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(120),
  /** The whole upstream call, first byte to last token; past it the client gets 504 fallback_timeout. */
  GITBLOCK_FALLBACK_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  /** max_tokens asked of the upstream at most: a larger max_tokens is lowered to it (finish_reason says length). */
  GITBLOCK_FALLBACK_MAX_TOKENS: z.coerce.number().int().min(1).max(1_000_000).default(1024),
}).superRefine((env, ctx) => {
  if (env.GITBLOCK_FALLBACK_URL === undefined && env.GITBLOCK_FALLBACK_API_KEY !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['GITBLOCK_FALLBACK_URL'], message: 'GITBLOCK_FALLBACK_API_KEY is set but not the URL it is for' });
  }
  // Credentials half given, or given twice, would connect as nobody or as the wrong one.
  if ((env.EDGE_TLS_CERT_FILE === undefined) !== (env.EDGE_TLS_KEY_FILE === undefined)) {
    const missing = env.EDGE_TLS_CERT_FILE === undefined ? 'EDGE_TLS_CERT_FILE' : 'EDGE_TLS_KEY_FILE';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE go together: set both or neither' });
  }
  if ((env.NATS_USER === undefined) !== (env.NATS_PASSWORD === undefined)) {
    const missing = env.NATS_USER === undefined ? 'NATS_USER' : 'NATS_PASSWORD';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'NATS_USER and NATS_PASSWORD go together: set both or neither' });
  }
  if (env.NATS_USER !== undefined && /^[a-z]+:\/\/[^/]*@/i.test(env.NATS_URL)) {
    ctx.addIssue({ code: 'custom', path: ['NATS_URL'], message: 'carries credentials and NATS_USER is set too: give them in one place' });
  }
});

export type ConfigValues = z.infer<typeof configSchema>;

/**
 * Where `parseConfig` records the values it took from the schema's defaults. A symbol, so it
 * stays out of `Object.keys` and JSON, but enumerable, so `{ ...config }` keeps it.
 */
export const defaultedValues: unique symbol = Symbol('gitblock.config.defaulted');

export type Config = ConfigValues & { readonly [defaultedValues]?: Partial<ConfigValues> };

/** A config error lists every bad variable with what it must be, in one message. */
export class ConfigError extends BaseError<'CONFIG_INVALID'> {
  override name = 'ConfigError';
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`, { code: 'CONFIG_INVALID' });
  }
}

export function parseConfig(env: Record<string, string | undefined>): Config {
  // Empty strings are treated as unset, as shells and .env files commonly produce them.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = configSchema.safeParse(cleaned);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const defaults: Partial<Record<keyof ConfigValues, unknown>> = {};
  for (const key of Object.keys(configSchema.shape) as (keyof ConfigValues)[]) {
    if (cleaned[key] === undefined && result.data[key] !== undefined) defaults[key] = result.data[key];
  }
  return { ...result.data, [defaultedValues]: defaults as Partial<ConfigValues> };
}

/**
 * `config[key]` when someone chose it: set (non-empty) in the environment, or put in the
 * config by hand after parsing; `undefined` when it is only the schema's default. For settings
 * with another source between the environment and the default, such as gitblock-node's
 * `--config` file, which a default must not override.
 *
 * @example
 * const temporal = flags.temporal ?? explicitValue(config, 'TEMPORAL_ADDRESS') ?? file.temporal ?? config.TEMPORAL_ADDRESS;
 */
export function explicitValue<K extends keyof ConfigValues>(config: Config, key: K): ConfigValues[K] | undefined {
  const defaults = config[defaultedValues];
  // Object.is, not `key in`: a value replaced after parsing, e.g. `{ ...config, KEY: v }`, is a choice.
  if (defaults && key in defaults && Object.is(defaults[key], config[key])) return undefined;
  return config[key];
}

/** Reads and validates `process.env`. The only `process.env` read in the project. */
export function loadConfig(overrides: Record<string, string | undefined> = {}): Config {
  return parseConfig({ ...process.env, ...overrides });
}

/**
 * `loadConfig` for this checkout's commands (`gitblock-node`, `npm run settle`): what a running
 * `npm start` chose (its gateway, edge, Temporal, chain and epochs, in `<GITBLOCK_DATA_DIR>/endpoints.json`)
 * stands in for the defaults, so they reach that network and not another on the fixed ports.
 * Variables still win.
 */
export function loadLocalConfig(): Config {
  const local = readLocalNetwork(process.env.GITBLOCK_DATA_DIR || configSchema.shape.GITBLOCK_DATA_DIR.parse(undefined));
  // Empty variables count as unset here too, so they do not hide the file's values.
  const set = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== ''));
  return parseConfig({ ...(local ? localNetworkAsEnv(local) : {}), ...set });
}
