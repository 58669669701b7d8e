/**
 * One child process of the stack: its output goes to a log file, its unexpected death is
 * reported with the tail of that log, and stopping it escalates from SIGTERM to SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { BaseError } from '../domain/errors.ts';

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class ServiceError extends BaseError<'SERVICE_FAILED'> {
  override name = 'ServiceError';
  constructor(
    readonly service: string,
    message: string,
  ) {
    super(message, { code: 'SERVICE_FAILED' });
  }
}

/** The last lines of a log file, for error messages. */
export function logTail(file: string, lines = 30): string {
  try {
    const size = statSync(file).size;
    const text = readFileSync(file, 'utf8').slice(Math.max(0, size - 16_000));
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export class ManagedProcess {
  readonly child: ChildProcess;
  private stopping = false;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(readonly options: ManagedProcessOptions) {
    const fd = openSync(options.logFile, 'a');
    this.child = spawn(options.command, options.args, {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      // Its own process group: a terminal's Ctrl-C reaches only the launcher, which then stops
      // services in order, instead of every service dying at once and looking like a crash.
      detached: true,
    });
    closeSync(fd);
    // If the launcher exits without stopping us (an uncaught error), take the service along.
    const killOnExit = () => this.child.kill('SIGKILL');
    process.once('exit', killOnExit);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        process.removeListener('exit', killOnExit);
        resolve();
      });
      this.child.once('error', (err) => {
        this.exitInfo = { code: -1, signal: null };
        this.spawnError = err;
        resolve();
      });
    });
  }

  spawnError: Error | undefined;

  get name(): string {
    return this.options.name;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** Called once if the process ends while nobody asked it to stop. */
  onUnexpectedExit(handler: (error: ServiceError) => void): void {
    // Only a notification: `exited` never rejects, and the caller registers and moves on.
    void this.exited.then(() => {
      if (!this.stopping) handler(this.failure('exited unexpectedly'));
    });
  }

  /** An error naming the service, how it ended, and the tail of its log. */
  failure(what: string): ServiceError {
    const how = this.spawnError
      ? `could not start: ${this.spawnError.message}`
      : this.exitInfo
        ? `exited with ${this.exitInfo.signal ? `signal ${this.exitInfo.signal}` : `code ${this.exitInfo.code}`}`
        : 'is running';
    return new ServiceError(
      this.name,
      `${this.name} ${what} (${how}). Last lines of ${this.options.logFile}:\n${logTail(this.options.logFile)}`,
    );
  }

  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
