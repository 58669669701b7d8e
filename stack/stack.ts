/**
 * Starts the local stack (Temporal dev server, a MongoDB-wire server, NATS with JetStream,
 * anvil), waits until each answers, and stops all of it again. Used by `npm run stack`,
 * `npm start` and the test setup.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { natsCredentials } from './credentials.ts';
import { ManagedProcess, ServiceError } from './process.ts';
import { freePort, listensOn, portIsFree, preferPort } from './ports.ts';
import { endpointsFor, mongodbReady, planServices, type Endpoints, type Ports, type ServiceName, type ServicePlan } from './services.ts';
import { ensureTool, findTool } from './tools.ts';

export interface StackOptions {
  /** Data and logs go here (Temporal's SQLite file, FerretDB's SQLite files, NATS's store, anvil's state). */
  dataDir: string;
  /** 'random': free ports (tests, parallel runs); 'default': well-known ports when free. */
  ports: 'random' | 'default';
  /** An external MongoDB; when set, no MongoDB-wire server is started. */
  mongodbUri?: string | undefined;
  /**
   * Ports taken as chosen, unchecked, in place of the mode's choice: a test stands in with them
   * for a port that another process takes between the choice and the bind.
   */
  portOverrides?: Partial<Ports>;
  say?: (line: string) => void;
}

/** The ports each service binds; if one is taken when it starts, these move together. */
const portsOf: Record<ServiceName, (keyof Ports)[]> = { temporal: ['temporal', 'temporalUi'], mongodb: ['mongodb'], nats: ['nats', 'natsMonitor'], anvil: ['anvil'] };
/** Attempts per service when its port is taken before it binds. */
const bindAttempts = 3;

const defaultPorts: Ports = { temporal: 7233, temporalUi: 8233, mongodb: 27017, nats: 4222, natsMonitor: 8222, anvil: 8545 };

async function choosePorts(mode: StackOptions['ports']): Promise<Ports> {
  const pick = (p: number) => (mode === 'random' ? freePort() : preferPort(p));
  const ports = {} as Ports;
  for (const key of Object.keys(defaultPorts) as (keyof Ports)[]) ports[key] = await pick(defaultPorts[key]);
  return ports;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export class Stack implements AsyncDisposable {
  private readonly failureHandlers: ((error: ServiceError) => void)[] = [];
  private stopped = false;

  constructor(
    readonly endpoints: Endpoints,
    readonly logDir: string,
    private readonly processes: ManagedProcess[],
  ) {
    for (const p of processes) {
      p.onUnexpectedExit((error) => {
        if (this.stopped) return;
        for (const handler of this.failureHandlers) handler(error);
      });
    }
  }

  /** Where the stack keeps its data, logs and the NATS credentials. */
  get dataDir(): string {
    return dirname(this.logDir);
  }

  /** Called when a service dies while the stack is meant to be up. */
  onServiceFailure(handler: (error: ServiceError) => void): void {
    this.failureHandlers.push(handler);
  }

  /** The process of one service, e.g. to kill it in a failure test. */
  process(name: ServiceName): ManagedProcess | undefined {
    return this.processes.find((p) => p.name === name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.processes.map((p) => p.stop()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

async function waitReady(proc: ManagedProcess, plan: ServicePlan): Promise<void> {
  const startedAt = Date.now();
  const deadline = startedAt + plan.readyTimeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!proc.running) throw proc.failure('failed to start');
    try {
      await plan.ready();
      // What answered may be another process on a port ours failed to bind (two networks
      // starting on one machine): ready only when ours is the listener.
      const ours = proc.child.pid === undefined ? undefined : listensOn(proc.child.pid, plan.port);
      if (ours === undefined) await sleep(startedAt + (plan.bindSettleMs ?? 300) - Date.now());
      if (!proc.running) throw proc.failure('failed to start');
      if (ours !== false) return;
      last = new Error(`port ${plan.port} answers, but from another process`);
    } catch (err) {
      if (err instanceof ServiceError) throw err;
      last = err;
    }
    await sleep(250);
  }
  const reason = last instanceof Error ? last.message : String(last);
  await proc.stop(2_000);
  throw proc.failure(`did not become ready within ${plan.readyTimeoutMs / 1000} s (last check: ${reason})`);
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const say = options.say ?? console.log;
  const dataDir = resolve(options.dataDir);
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });

  if (options.mongodbUri) {
    try {
      await mongodbReady(options.mongodbUri);
    } catch (err) {
      throw new ServiceError('mongodb', `MONGODB_URI is set but MongoDB does not answer there: ${(err as Error).message}`);
    }
  }
  const mongod = !options.mongodbUri && (await findTool('mongod')) !== undefined;
  const ports = { ...(await choosePorts(options.ports)), ...options.portOverrides };
  const nats = natsCredentials(dataDir);
  const external = { mongodbUri: options.mongodbUri, mongod };
  const plans = planServices(ports, dataDir, nats, external);

  // Install what is missing before starting anything, so a slow first install never counts
  // against a service's readiness deadline.
  const binaries = new Map<string, string>();
  for (const plan of plans) binaries.set(plan.tool, await ensureTool(plan.tool, say));

  const processes: ManagedProcess[] = [];
  let aborted = false;
  const start = (plan: ServicePlan) => {
    const proc = new ManagedProcess({ name: plan.name, command: binaries.get(plan.tool)!, args: plan.args, logFile: join(logDir, `${plan.name}.log`) });
    processes.push(proc);
    return proc;
  };
  // A service whose port was taken after it was chosen is started again on fresh ports.
  const startService = async (first: ServicePlan): Promise<void> => {
    let plan = first;
    for (let attempt = 1; ; attempt++) {
      const proc = start(plan);
      try {
        return await waitReady(proc, plan);
      } catch (err) {
        const keys = portsOf[plan.name];
        // Ours has exited; a port that is still held is held by someone else.
        const taken = !proc.running && (await Promise.all(keys.map((k) => portIsFree(ports[k])))).includes(false);
        if (!taken || attempt >= bindAttempts) throw err;
        const before = keys.map((k) => ports[k]).join(', ');
        for (const k of keys) ports[k] = await freePort();
        // Another service failed meanwhile and everything is being stopped: start nothing more.
        if (aborted) throw err;
        say(`${plan.name}: port ${before} was taken before it could bind; starting it again on ${keys.map((k) => ports[k]).join(', ')}`);
        plan = planServices(ports, dataDir, nats, external).find((p) => p.name === plan.name)!;
      }
    }
  };
  try {
    await Promise.all(plans.map(startService));
  } catch (err) {
    aborted = true;
    await Promise.all(processes.map((p) => p.stop(3_000)));
    throw err;
  }
  const running = processes.filter((p) => p.running);
  return new Stack(endpointsFor(ports, nats, options.mongodbUri), logDir, running);
}
