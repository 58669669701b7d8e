/**
 * The Temporal worker's log, one line per entry: what happened, where, and the innermost
 * failure's message and code. The SDK's default prints each failure's whole stack, so one
 * refused settlement (a business refusal, not a bug) filled `npm start`'s terminal.
 */
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, type LogEntry, type LogLevel } from '@temporalio/worker';
import { walk } from '../domain/errors.ts';

/** The innermost cause's first line, with the ApplicationFailure type (the stable code) when there is one. */
export function describeCause(err: unknown): string {
  const code = (walk(err, (e) => e instanceof ApplicationFailure && !!e.type) as ApplicationFailure | undefined)?.type;
  const cause = walk(err);
  const message = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0]!.trim();
  return code && !message.includes(`(${code})`) ? `${message} (${code})` : message;
}

export function formatLogEntry(entry: LogEntry): string {
  const meta = (entry.meta ?? {}) as Record<string, unknown>;
  const where = [meta['workflowType'] ?? meta['activityType'], meta['workflowId']].filter((v) => typeof v === 'string' && v !== '').join(' ');
  const failure = meta['error'] ?? meta['failure'];
  return `[temporal] ${entry.level} ${entry.message}${where ? ` (${where})` : ''}${failure === undefined ? '' : `: ${describeCause(failure)}`}`;
}

/** A logger for `Runtime.install` that writes each entry as one line. */
export function oneLineLogger(level: LogLevel = 'WARN', write: (line: string) => void = (line) => console.error(line)): DefaultLogger {
  return new DefaultLogger(level, (entry) => write(formatLogEntry(entry)));
}
