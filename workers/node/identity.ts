/**
 * Who this node is: the operator's Ethereum key (rewards go to its address, and only the
 * holder can sign for it), a stable node id, and the signed registration that ties the two
 * together, sent through the edge (workers/node/edge-client.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { link, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Hex, LocalAccount, PrivateKeyAccount } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { nodeIdSchema } from '../../domain/heartbeat.ts';
import {
  defaultRegistrationLifetimeSeconds,
  registrationFieldsSchema,
  registrationTypedData,
  type RegistrationBody,
  type RegistrationFields,
} from '../../domain/registration.ts';
import { BaseError, codedError } from '../../domain/errors.ts';

export class OperatorKeyError extends BaseError<'OPERATOR_KEY_INSECURE' | 'OPERATOR_KEY_INVALID' | 'OPERATOR_KEY_UNREADABLE'> {
  override name = 'OperatorKeyError';
  constructor(code: OperatorKeyError['code'], message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, code });
  }
}

export class NodeIdError extends codedError('NODE_ID_INVALID') {
  override name = 'NodeIdError';
}

export interface OperatorKey {
  account: PrivateKeyAccount;
  path: string;
  /** True when this call generated the key: tell the operator to back it up. */
  created: boolean;
}

const privateKeyPattern = /^0x[0-9a-fA-F]{64}$/;

/**
 * Loads the operator key from `path`, or creates one there if the file does not exist.
 *
 * The key controls the operator's rewards, so an existing file readable or writable by group or
 * others is refused rather than used, and a new file is never world-readable, not even briefly.
 *
 * @throws {OperatorKeyError} for a key file with loose permissions, bad content, or that cannot be read.
 */
export async function loadOrCreateOperatorKey(path: string): Promise<OperatorKey> {
  const existing = await readKeyFile(path);
  if (existing !== undefined) return { account: existing, path, created: false };

  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = generatePrivateKey();
  // Mode 0600 from creation ('wx' also refuses a planted file or symlink at the temp name).
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(`${key}\n`, 'utf8');
    // Durable before it becomes visible: a crash must not leave an empty key file behind.
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await publishNoClobber(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another process created the key first: use theirs, so both agree on one operator.
    const winner = await readKeyFile(path);
    if (winner) return { account: winner, path, created: false };
    throw err;
  }
  return { account: privateKeyToAccount(key), path, created: true };
}

/**
 * Moves the finished temp file to `path` unless something is already there. A hard link is
 * atomic and fails with EEXIST instead of overwriting, which a plain rename would do, silently
 * swapping a racing process's key for ours. Filesystems without hard links get the rename.
 */
async function publishNoClobber(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
    await unlink(tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    // Not atomic like the link, but still never overwrites a key that is already there.
    const exists = await lstat(path).then(
      () => true,
      (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)),
    );
    if (exists) throw Object.assign(new Error(`${path} already exists`), { code: 'EEXIST' });
    await rename(tmp, path);
  }
}

/** The account in the key file, or undefined when there is no file. */
async function readKeyFile(path: string): Promise<PrivateKeyAccount | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new OperatorKeyError('OPERATOR_KEY_UNREADABLE', `cannot read operator key ${path}: ${(err as Error).message}`);
  }
  try {
    // fstat the opened file, not the path, so the checked file is the one read.
    const stat = await handle.stat();
    if (!stat.isFile()) throw new OperatorKeyError('OPERATOR_KEY_UNREADABLE', `operator key ${path} is not a regular file`);
    // POSIX modes mean nothing on Windows, where every file reports 0o666.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
      throw new OperatorKeyError(
        'OPERATOR_KEY_INSECURE',
        `operator key ${path} is accessible to group or others (mode ${mode}); anyone who reads it can take your rewards. Fix it with: chmod 600 ${path}`,
      );
    }
    // A key file is 67 bytes; refuse to slurp something huge that was put there by mistake.
    if (stat.size > 1024) throw invalidKey(path, `it is ${stat.size} bytes`);
    const text = (await handle.readFile('utf8')).trim();
    if (!privateKeyPattern.test(text)) throw invalidKey(path, text.length === 0 ? 'it is empty' : 'its content is not 0x followed by 64 hex digits');
    try {
      return privateKeyToAccount(text as Hex);
    } catch {
      // 32 bytes but zero or beyond the curve order: not a secp256k1 key.
      throw invalidKey(path, 'it is not a valid secp256k1 private key');
    }
  } finally {
    await handle.close();
  }
}

function invalidKey(path: string, why: string): OperatorKeyError {
  return new OperatorKeyError(
    'OPERATOR_KEY_INVALID',
    `operator key ${path} is not a private key (${why}); expected one line: 0x followed by 64 hex digits. Restore it from your backup, or move it away to have a new key created`,
  );
}

/**
 * The node's id: `given` when the operator chose one, else the id in `<stateDir>/node-id`,
 * created on first start (`node-` + 10 random hex digits) so restarts keep their identity.
 *
 * @throws {NodeIdError} for an invalid given or stored id.
 */
export function loadOrCreateNodeId(stateDir: string, given?: string): string {
  if (given !== undefined) {
    const parsed = nodeIdSchema.safeParse(given);
    if (!parsed.success) throw new NodeIdError(`invalid node id ${JSON.stringify(given)}: node ids are 3-63 lowercase letters, digits and dashes, starting with a letter or digit`);
    return parsed.data;
  }
  const file = join(stateDir, 'node-id');
  const stored = readNodeIdFile(file);
  if (stored !== undefined) return stored;

  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const id = `node-${randomBytes(5).toString('hex')}`;
  try {
    writeFileSync(file, `${id}\n`, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    // Lost a race with another start: theirs is the id.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readNodeIdFile(file) ?? id;
    throw err;
  }
  return id;
}

function readNodeIdFile(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!nodeIdSchema.safeParse(text).success) throw new NodeIdError(`${file} holds an invalid node id ${JSON.stringify(text.slice(0, 80))}; fix it or delete the file to get a new id`);
  return text;
}

/** The node's own description of itself does not fit the registration limits. */
export class RegistrationInputError extends codedError('REGISTRATION_INPUT_INVALID') {
  override name = 'RegistrationInputError';
}

/**
 * What the node says about itself; the operator comes from the signing key. Model hashes may
 * be given bare (as sha256 digests print) or 0x-prefixed, in either case: they are sent as the
 * gateway wants them, 0x + lowercase.
 */
export type RegistrationInput = Omit<RegistrationFields, 'operator' | 'expiry' | 'nonce'>;

export interface SignRegistrationOptions {
  /** Unix seconds; defaults to the system clock. */
  now?: () => number;
  lifetimeSeconds?: number;
}

/**
 * Signs a registration with the operator key: the exact body `verifyRegistration` accepts,
 * with a fresh random nonce and an expiry `lifetimeSeconds` (default 5 minutes) from now.
 *
 * Validates with the gateway's own schema first, so a bad field fails here, naming the field,
 * instead of as a rejection from the gateway.
 */
export async function signRegistration(
  account: LocalAccount,
  fields: RegistrationInput,
  chainId: number,
  options: SignRegistrationOptions = {},
): Promise<RegistrationBody> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const parsed = registrationFieldsSchema.safeParse({
    ...fields,
    modelHashes: fields.modelHashes.map((h) => (/^(0x)?[0-9a-fA-F]{64}$/.test(h) ? `0x${h.replace(/^0x/, '').toLowerCase()}` : h)),
    operator: account.address,
    expiry: now() + (options.lifetimeSeconds ?? defaultRegistrationLifetimeSeconds),
    nonce: `0x${randomBytes(32).toString('hex')}`,
  });
  if (!parsed.success) {
    throw new RegistrationInputError(`cannot register: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const registration = parsed.data;
  const signature = await account.signTypedData(registrationTypedData(chainId, registration));
  return { registration, signature };
}
