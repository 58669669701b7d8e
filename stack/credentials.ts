/**
 * The local stack's NATS credentials: made once per data dir, kept there (mode 0600) and
 * reused, so `npm run stack` and processes started against it later agree; a test run's
 * temporary data dir gets fresh ones. nats-server gets them through a generated config file,
 * not its `--user/--pass` flags, which any local user could read in `ps`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { codedError } from '../domain/errors.ts';

export interface NatsCredentials {
  user: string;
  password: string;
}

export class CredentialsFileError extends codedError('CREDENTIALS_FILE_INVALID') {
  override name = 'CredentialsFileError';
}

/** Where the stack keeps them: beside NATS's JetStream store. */
export function natsCredentialsFile(dataDir: string): string {
  return join(dataDir, 'nats', 'credentials.json');
}

// base64url: safe in a URL's user info and in a quoted nats-server config string, unescaped.
const safe = /^[\w-]{1,128}$/;

function readCredentials(file: string): NatsCredentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CredentialsFileError(`${file} is not readable JSON (${(err as Error).message}); delete it to make new NATS credentials`);
  }
  const { user, password } = (parsed ?? {}) as Partial<NatsCredentials>;
  if (typeof user !== 'string' || typeof password !== 'string' || !safe.test(user) || !safe.test(password)) {
    throw new CredentialsFileError(`${file} must hold {"user","password"} of letters, digits, _ and -; delete it to make new NATS credentials`);
  }
  return { user, password };
}

/** The data dir's NATS credentials, made on first use. */
export function natsCredentials(dataDir: string): NatsCredentials {
  const file = natsCredentialsFile(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  const fresh: NatsCredentials = { user: 'gitblock', password: randomBytes(24).toString('base64url') };
  try {
    // 'wx': two launchers sharing a data dir at once must not each write their own.
    writeFileSync(file, `${JSON.stringify(fresh)}\n`, { mode: 0o600, flag: 'wx' });
    return fresh;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  // A copy or an untar may have widened it; the secret is only for this user.
  chmodSync(file, 0o600);
  return readCredentials(file);
}

/** The nats-server config that refuses every client without these credentials. */
export function writeNatsServerConfig(dataDir: string, credentials: NatsCredentials): string {
  const file = join(dataDir, 'nats', 'server.conf');
  mkdirSync(dirname(file), { recursive: true });
  const text = ['# Written by the GitBlock stack launcher at every start; edits are lost.', 'authorization {', `  user: "${credentials.user}"`, `  password: "${credentials.password}"`, '}', ''].join('\n');
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}
