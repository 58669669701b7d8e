import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** Asks the OS for a free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** True when nothing listens on the port. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The preferred port when free, else any free one: `npm start` keeps well-known ports when it
 * can. Only a first guess: another process may take the port before ours binds it, so whoever
 * uses the answer must retry on a bind failure ({@link bindPreferring}, stack/stack.ts).
 */
export async function preferPort(preferred: number | undefined): Promise<number> {
  if (preferred !== undefined && (await portIsFree(preferred))) return preferred;
  return freePort();
}

/** True for the error of a bind to a port another process holds (Node's `net`, or grpc-js's message). */
export function isAddressInUse(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return e?.code === 'EADDRINUSE' || (typeof e?.message === 'string' && /EADDRINUSE|address already in use/i.test(e.message));
}

/**
 * Binds on the preferred port and, if another process holds it, on one the OS picks (port 0,
 * chosen and bound in one step, so nothing can take it in between). No check before the bind:
 * a port seen free can be taken before the bind, as two networks starting on one machine showed.
 *
 * @example
 * const url = await bindPreferring(8080, (port) => app.listen({ host: '127.0.0.1', port }));
 */
export async function bindPreferring<T>(preferred: number, bind: (port: number) => Promise<T>, say: (line: string) => void = () => {}): Promise<T> {
  try {
    return await bind(preferred);
  } catch (err) {
    if (preferred === 0 || !isAddressInUse(err)) throw err;
    say(`port ${preferred} is taken; using another`);
  }
  return bind(0);
}

/**
 * Whether process `pid` is the one listening on TCP `port`, read from /proc (Linux);
 * `undefined` where /proc cannot say (another OS). The stack uses it to tell its own service
 * from another process that took the port first and answers in its place.
 */
export function listensOn(pid: number, port: number): boolean | undefined {
  const inodes = new Set<string>();
  let read = false;
  try {
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      let text: string;
      try {
        text = readFileSync(table, 'utf8');
      } catch {
        continue;
      }
      read = true;
      for (const line of text.split('\n').slice(1)) {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || f[3] !== '0A') continue; // 0A: LISTEN
        if (parseInt(f[1]!.split(':').pop()!, 16) === port) inodes.add(f[9]!);
      }
    }
    if (!read) return undefined;
    if (inodes.size === 0) return false;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) return true;
    }
    return false;
  } catch {
    return undefined;
  }
}
