/**
 * The epoch schedule of `npm start`'s network: weekly by default, or short (`--epoch 2m`) to see
 * the whole reward cycle (serve, settle, claim) in minutes. Short epochs start at the first start
 * that asks for them; the schedule is kept in `<data dir>/epochs.json` so a restart numbers the
 * epochs as before, and a data folder that has settled epochs under one schedule refuses
 * another (epoch numbers would name other windows, and settlement goes strictly in order).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from 'mongodb';
import { z } from 'zod';
import { explicitValue, type Config } from '../config/env.ts';
import { DEFAULT_GENESIS, EPOCH_SECONDS, type EpochSchedule } from '../domain/emission.ts';

import { codedError } from '../domain/errors.ts';
import { store } from '../store/index.ts';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
/** Shorter epochs would settle faster than one settlement runs on a small machine. */
export const MIN_EPOCH_SECONDS = 30;

export class EpochOptionError extends codedError('EPOCH_OPTION_INVALID') {
  override name = 'EpochOptionError';
}

/**
 * `90s`, `2m`, `1h`, `1d`, `1w` or plain seconds, at least {@link MIN_EPOCH_SECONDS}.
 * @throws {EpochOptionError} naming the value and what it must be.
 */
export function parseEpochLength(text: string): number {
  const m = /^(\d{1,7})([smhdw]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * units[m[2] || 's']! : Number.NaN;
  if (!Number.isSafeInteger(seconds) || seconds < MIN_EPOCH_SECONDS) {
    throw new EpochOptionError(`--epoch: expected a length such as 2m, 90s or 1h (at least ${MIN_EPOCH_SECONDS} s), got ${JSON.stringify(text)}`);
  }
  return seconds;
}

/** `2 min`, `1 week`, `90 s`: for messages. */
export function describeEpochLength(seconds: number): string {
  for (const [unit, size] of [['week', 604_800], ['day', 86_400], ['h', 3600], ['min', 60]] as const) {
    if (seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${unit}${(unit === 'week' || unit === 'day') && n !== 1 ? 's' : ''}`;
    }
  }
  return `${seconds} s`;
}

const recordSchema = z.object({ genesis: z.number().int().min(0), epochSeconds: z.number().int().min(1) });

/**
 * The schedule this start uses, recorded in `<dataDir>/epochs.json`.
 *
 * @param epochSeconds from `--epoch`; else GITBLOCK_EPOCH_SECONDS when set; else a week.
 * @throws {EpochOptionError} when the data folder settled epochs under another schedule.
 */
export async function localEpochSchedule(options: { dataDir: string; db: Db; config: Config; epochSeconds?: number | undefined; nowMs?: number }): Promise<EpochSchedule> {
  const { dataDir, config } = options;
  const file = join(dataDir, 'epochs.json');
  const epochSeconds = options.epochSeconds ?? explicitValue(config, 'GITBLOCK_EPOCH_SECONDS') ?? EPOCH_SECONDS;
  const genesis = explicitValue(config, 'GITBLOCK_GENESIS');
  let recorded: EpochSchedule | undefined;
  if (existsSync(file)) {
    const parsed = recordSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    if (parsed.success) recorded = parsed.data;
  }
  if (recorded && recorded.epochSeconds === epochSeconds && (genesis === undefined || genesis === recorded.genesis)) return recorded;

  // Weekly epochs keep the network's genesis; short ones start with the epoch now running.
  const nowSeconds = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const wanted: EpochSchedule = {
    epochSeconds,
    genesis: genesis ?? (epochSeconds === EPOCH_SECONDS ? DEFAULT_GENESIS : nowSeconds - (nowSeconds % epochSeconds)),
  };
  // A folder from before this record was kept settled weekly from the default genesis.
  const before = recorded ?? { genesis: DEFAULT_GENESIS, epochSeconds: EPOCH_SECONDS };
  const settled = await store(options.db).epochs.find({}, { projection: { _id: 1 } }).sort({ _id: -1 }).limit(1).next();
  if (settled && (before.genesis !== wanted.genesis || before.epochSeconds !== wanted.epochSeconds)) {
    throw new EpochOptionError(
      `${dataDir} holds settled epochs (up to ${settled._id}) of ${describeEpochLength(before.epochSeconds)}; epochs of ${describeEpochLength(wanted.epochSeconds)} would renumber them. ` +
        `Start with that length again, or use another data folder: GITBLOCK_DATA_DIR=${dataDir}-${describeEpochLength(wanted.epochSeconds).replace(/\s+/g, '')} npm start -- --epoch ...`,
    );
  }
  writeFileSync(file, `${JSON.stringify(wanted)}\n`);
  return wanted;
}
