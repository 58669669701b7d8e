/**
 * The steps of settling one epoch (workflows/settlement.ts), each an activity that is safe to
 * run again at any point: it reads the epoch's record (`epochs`, `_id` = epoch), does only what
 * is left, and moves the record forward with an update conditional on the status it found.
 *
 *   closeEpoch    unique insert of the epoch record (the lock); each accrual assigned to it by a
 *                 unique insert in `epoch_entries` (one epoch per request id, ever)
 *   computeEpoch  sums per operator, emission cap, Merkle tree, proofs stored, root recorded
 *   postEpochRoot posts the root unless the chain already has it (equal: done; different: stop)
 *   confirmEpoch  waits for N blocks on the EpochPosted event, then marks the epoch settled
 *
 * Epochs settle strictly one after another (a unique `epoch_links` insert per predecessor), so
 * "what earlier epochs paid" is final when an epoch computes its cap, and no two closes ever
 * race for the same accruals.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Collection, Db } from 'mongodb';
import { getAddress, isAddress, parseEventLogs, zeroHash, type Address, type Hex, type TransactionReceipt } from 'viem';
import { isDuplicateKey } from '../connections/mongo.ts';
import { rewardsDistributorAbi } from '../contracts/artifacts/index.ts';
import { availableEmission, cumulativeEmission, epochEmission, epochPayout, epochWindow, lastCompleteEpoch, type EpochSchedule } from '../domain/emission.ts';
import { epochPostPending } from '../domain/failures.ts';
import { isFinalEpochStatus, settlementErrors, type EpochSummary, type SettlementPoint } from '../domain/settlement.ts';
import { assignAccrualsToEpoch, insertAllOnce, voidedAmong } from './ledger.ts';
import { buildRewardsTreeOffThread } from './rewards-tree.ts';
import { revertName, type SettlementChain } from './settlement-chain.ts';
import { ensureIndexes, store, type EpochDoc, type EpochEntry, type LinkDoc, type ProofDoc } from '../store/index.ts';

export type { EpochDoc, ProofDoc };



export interface SettlementDeps {
  db: Db;
  schedule: EpochSchedule;
  /** Without it, settlement refuses to start (nothing is closed that could not be posted). */
  chain?: SettlementChain | undefined;
  /** Unix ms; the activity clock. */
  now?: () => number;
  /** Called at each step boundary; tests use it to kill the worker there. */
  probe?: ((point: SettlementPoint, epoch: number) => void | Promise<void>) | undefined;
}


/** Accruals inserted up to this long after their epoch closed are still paid, by the next epoch. */
export const stragglerMarginMs = 60 * 60 * 1000;

/** Heartbeats when running as an activity (the benchmark calls these functions directly). */
function beat(details?: unknown): void {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return;
  }
  context.heartbeat(details);
}

/** Sleeps `ms`; inside an activity, a cancellation (worker shutdown, workflow cancelled) ends it early. */
function pause(ms: number): Promise<void> {
  try {
    return Context.current().sleep(ms);
  } catch {
    return new Promise((r) => setTimeout(r, ms));
  }
}

/** Runs `fn`, heartbeating every 2 s meanwhile (waiting for a receipt or for blocks). */
async function heartbeating<T>(fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => beat(), 2_000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

const fail = (type: string, message: string) => ApplicationFailure.nonRetryable(message, type);

export function summarize(doc: EpochDoc): EpochSummary {
  return {
    epoch: doc._id,
    status: doc.status,
    windowStartMs: doc.windowStart.getTime(),
    windowEndMs: doc.windowEnd.getTime(),
    entries: doc.entries,
    accruedTotal: doc.accruedTotal,
    available: doc.available,
    paid: doc.paid,
    capped: doc.capped,
    operators: doc.operators,
    root: doc.root,
    postTx: doc.postTx,
    postBlock: doc.postBlock,
  };
}

/** What every settlement step works with: the collections, the clock and the test probe. */
interface SettlementContext {
  deps: SettlementDeps;
  db: Db;
  schedule: EpochSchedule;
  now: () => number;
  epochs: Collection<EpochDoc>;
  proofs: Collection<ProofDoc>;
  links: Collection<LinkDoc>;
  assignments: Collection<EpochEntry>;
  probe: (point: SettlementPoint, epoch: number) => Promise<void>;
}

function contextOf(deps: SettlementDeps): SettlementContext {
  const { db } = deps;
  return {
    deps,
    db,
    schedule: deps.schedule,
    now: deps.now ?? Date.now,
    epochs: store(db).epochs,
    proofs: store(db).rewardProofs,
    links: store(db).epochLinks,
    assignments: store(db).epochEntries,
    probe: async (point, epoch) => {
      if (deps.probe) await deps.probe(point, epoch);
    },
  };
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw fail(settlementErrors.invalidEpoch, `epoch must be a non-negative integer, got ${String(epoch)}`);
}

function requireChain(ctx: SettlementContext): SettlementChain {
  if (!ctx.deps.chain) {
    throw fail(settlementErrors.notConfigured, 'this control worker has no settler: set GITBLOCK_DEPLOYMENT_FILE and GITBLOCK_SETTLER_KEY_FILE');
  }
  return ctx.deps.chain;
}

async function load(ctx: SettlementContext, epoch: number): Promise<EpochDoc> {
  const doc = await ctx.epochs.findOne({ _id: epoch });
  if (!doc) throw fail(settlementErrors.wrongState, `epoch ${epoch} is not closed`);
  return doc;
}

/**
 * Which place in the settlement sequence `epoch` would take: the first epoch ever settled
 * (`first`), or the one right after a finished epoch (`after:<epoch-1>`). Read-only: the
 * checks give the clear errors; the unique insert of the link (`takePlace`) is what makes two
 * settlements racing for one place safe.
 */
async function placeOf(ctx: SettlementContext, epoch: number): Promise<{ linkId: string; previous?: EpochDoc }> {
  const latest = await ctx.epochs.find({}).sort({ _id: -1 }).limit(1).next();
  if (!latest) return { linkId: 'first' };
  if (latest._id > epoch) throw fail(settlementErrors.outOfOrder, `epoch ${epoch} precedes epoch ${latest._id}, which is already settling; its accruals are paid in a later epoch`);
  if (latest._id !== epoch - 1) throw fail(settlementErrors.outOfOrder, `epochs settle in order: settle epoch ${latest._id + 1} before epoch ${epoch}`);
  if (!isFinalEpochStatus(latest.status)) throw fail(settlementErrors.outOfOrder, `epoch ${latest._id} is still settling (${latest.status}); epoch ${epoch} settles after it`);
  return { linkId: `after:${epoch - 1}`, previous: latest };
}

async function takePlace(ctx: SettlementContext, epoch: number, linkId: string): Promise<void> {
  try {
    await ctx.links.insertOne({ _id: linkId, epoch, at: new Date(ctx.now()) });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    const link = await ctx.links.findOne({ _id: linkId });
    if (link && link.epoch !== epoch) throw fail(settlementErrors.outOfOrder, `epoch ${link.epoch} took this place in the settlement sequence before epoch ${epoch}`);
  }
}

/** Sums the epoch's accruals per operator (checksummed), leaving out voided ones. */
async function sumAccruals(ctx: SettlementContext, epoch: number): Promise<{ sums: Map<Address, bigint>; entries: number }> {
  const sums = new Map<Address, bigint>();
  const checksummed = new Map<string, Address>();
  let entries = 0;
  let batch: { _id: string; operator: string; amount: string }[] = [];
  const flush = async () => {
    // The void record, not the ledger status, is what counts (see activities/ledger.ts).
    const voided = await voidedAmong(ctx.db, batch.map((b) => b._id));
    for (const b of batch) {
      if (voided.has(b._id)) continue;
      if (typeof b.amount !== 'string' || !/^\d{1,78}$/.test(b.amount)) throw fail(settlementErrors.ledgerCorrupt, `ledger entry ${b._id} has a bad amount`);
      let operator = checksummed.get(b.operator);
      if (!operator) {
        if (typeof b.operator !== 'string' || !isAddress(b.operator, { strict: false })) throw fail(settlementErrors.ledgerCorrupt, `ledger entry ${b._id} has a bad operator`);
        operator = getAddress(b.operator);
        checksummed.set(b.operator, operator);
      }
      sums.set(operator, (sums.get(operator) ?? 0n) + BigInt(b.amount));
      entries++;
    }
    batch = [];
    beat();
  };
  for await (const doc of ctx.assignments.find({ epoch }).batchSize(5_000)) {
    batch.push(doc);
    if (batch.length >= 1_000) await flush();
  }
  await flush();
  return { sums, entries };
}

/** The EpochPosted event of `epoch` on the distributor: from the known transaction, else by a scan. */
async function findPostLog(chain: SettlementChain, epoch: number, doc: EpochDoc) {
  const fromReceipt = (receipt: TransactionReceipt) =>
    parseEventLogs({ abi: rewardsDistributorAbi, eventName: 'EpochPosted', logs: receipt.logs }).find(
      (l) => l.address.toLowerCase() === chain.distributor.toLowerCase() && l.args.epoch === BigInt(epoch),
    );
  if (doc.postTx) {
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: doc.postTx }).catch(() => undefined);
    const log = receipt && receipt.status === 'success' ? fromReceipt(receipt) : undefined;
    if (log) return log;
  }
  const logs = await chain.publicClient.getContractEvents({
    address: chain.distributor,
    abi: rewardsDistributorAbi,
    eventName: 'EpochPosted',
    args: { epoch: BigInt(epoch) },
    fromBlock: chain.fromBlock,
    toBlock: 'latest',
  });
  return logs[0];
}

const readRoot = (chain: SettlementChain, epoch: number): Promise<Hex> =>
  chain.publicClient.readContract({ address: chain.distributor, abi: rewardsDistributorAbi, functionName: 'epochRoot', args: [BigInt(epoch)] });

/** Waits for a receipt; undefined when the transaction is not mined within `timeoutMs`. */
async function receiptOf(chain: SettlementChain, hash: Hex, timeoutMs: number): Promise<TransactionReceipt | undefined> {
  try {
    return await heartbeating(() => chain.publicClient.waitForTransactionReceipt({ hash, timeout: timeoutMs, pollingInterval: chain.pollingIntervalMs }));
  } catch (err) {
    if ((err as Error).name === 'WaitForTransactionReceiptTimeoutError') return undefined;
    throw err;
  }
}

/** Takes the epoch's place in the sequence and inserts its 'closing' record (or finds it). */
async function openEpochRecord(ctx: SettlementContext, epoch: number): Promise<EpochDoc> {
  const { linkId, previous } = await placeOf(ctx, epoch);
  const window = epochWindow(epoch, ctx.schedule);
  if (ctx.now() < window.endMs) {
    throw fail(settlementErrors.notOver, `epoch ${epoch} runs until ${new Date(window.endMs).toISOString()}; it can be settled after that`);
  }
  await takePlace(ctx, epoch, linkId);
  // From the previous epoch's end, less a margin for accruals that were inserted late:
  // those already assigned stay where they are (the insert is unique per request).
  const assignFrom = previous ? new Date(previous.windowEnd.getTime() - stragglerMarginMs) : undefined;
  try {
    await ctx.epochs.insertOne({ _id: epoch, status: 'closing', windowStart: new Date(window.startMs), windowEnd: new Date(window.endMs), ...(assignFrom ? { assignFrom } : {}), createdAt: new Date(ctx.now()) });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
  return (await ctx.epochs.findOne({ _id: epoch }))!;
}

/**
 * Closes `epoch`: takes its place in the sequence, inserts its record (unique on the epoch:
 * the lock and state record), and assigns it every accrual created since the previous
 * epoch's end (less a margin for late inserts; everything before, for the first epoch
 * settled) and before its own end that no epoch has yet. Repeatable: the record is found and
 * the assignment re-run while 'closing'; the assignment inserts are unique per request.
 */
async function closeEpoch(ctx: SettlementContext, epoch: number): Promise<EpochSummary> {
  checkEpoch(epoch);
  requireChain(ctx);
  let doc = (await ctx.epochs.findOne({ _id: epoch })) ?? (await openEpochRecord(ctx, epoch));
  if (doc.status === 'closing') {
    // The indexes settlement and the rewards API query by (idempotent).
    await ensureIndexes(ctx.db, ['ledger', 'epochEntries', 'rewardProofs']);
    await assignAccrualsToEpoch(ctx.db, epoch, { fromMs: doc.assignFrom?.getTime(), beforeMs: doc.windowEnd.getTime() }, () => beat());
    const entries = await ctx.assignments.countDocuments({ epoch });
    await ctx.epochs.updateOne({ _id: epoch, status: 'closing' }, { $set: { status: 'closed', closedAt: new Date(ctx.now()), entries } });
    doc = (await ctx.epochs.findOne({ _id: epoch }))!;
    await ctx.probe('closed', epoch);
  }
  return summarize(doc);
}

/**
 * Stores the proofs of the payout's Merkle tree (removing stale ones of an interrupted attempt
 * with another root), then records the root: the update conditional on 'closed' fixes the payout.
 */
async function storeTree(ctx: SettlementContext, epoch: number, shares: readonly (readonly [Address, bigint])[], sums: Map<Address, bigint>, fixed: Partial<EpochDoc>): Promise<void> {
  // Tens of seconds for 100,000 operators: on a worker thread, heartbeating meanwhile.
  const tree = await heartbeating(() => buildRewardsTreeOffThread(BigInt(epoch), shares.map(([operator, amount]) => ({ operator, amount }))));
  // An interrupted attempt may have stored proofs for another root (a void landed in between).
  await ctx.proofs.deleteMany({ epoch, root: { $ne: tree.root } });
  const docs: ProofDoc[] = [...tree.claims.values()].map((c) => ({
    _id: `${epoch}:${c.operator}`,
    epoch,
    operator: c.operator,
    amount: c.amount.toString(),
    accrued: sums.get(c.operator)!.toString(),
    proof: c.proof,
    root: tree.root,
  }));
  // Documents already stored by an earlier attempt with the same root have the same content.
  await insertAllOnce(ctx.proofs, docs, () => beat());
  await ctx.epochs.updateOne({ _id: epoch, status: 'closed' }, { $set: { status: 'computed', root: tree.root, ...fixed } });
}

/**
 * Computes what `epoch` pays: per-operator sums of its non-voided accruals, capped pro rata
 * by the available emission, as a Merkle tree. The proofs are stored first (stale ones of an
 * interrupted attempt with another root removed), and the root is recorded last, with an
 * update conditional on 'closed': once recorded, the payout is fixed and a retry returns it.
 * An epoch with nothing to pay is recorded as 'settled-empty' and never posted.
 */
async function computeEpoch(ctx: SettlementContext, epoch: number): Promise<EpochSummary> {
  checkEpoch(epoch);
  const doc = await load(ctx, epoch);
  if (doc.status === 'closing') throw fail(settlementErrors.wrongState, `epoch ${epoch} is still closing`);
  if (doc.status !== 'closed') return summarize(doc);

  const { sums, entries } = await sumAccruals(ctx, epoch);
  let paidBefore = 0n;
  for await (const earlier of ctx.epochs.find({ _id: { $lt: epoch } }, { projection: { paid: 1 } })) paidBefore += BigInt(earlier.paid ?? '0');
  const available = availableEmission(epoch, paidBefore);
  const payout = epochPayout(sums, available);
  const fixed = {
    entries,
    emission: epochEmission(epoch).toString(),
    cumulativeEmission: cumulativeEmission(epoch).toString(),
    paidBefore: paidBefore.toString(),
    available: available.toString(),
    accruedTotal: payout.accruedTotal.toString(),
    paid: payout.paid.toString(),
    capped: payout.capped,
    operators: payout.shares.length,
    computedAt: new Date(ctx.now()),
  };

  if (payout.paid === 0n) {
    await ctx.epochs.updateOne({ _id: epoch, status: 'closed' }, { $set: { status: 'settled-empty', ...fixed, settledAt: new Date(ctx.now()) } });
  } else {
    await storeTree(ctx, epoch, payout.shares, sums, fixed);
  }
  const after = await load(ctx, epoch);
  await ctx.probe('computed', epoch);
  return summarize(after);
}

/**
 * Sends postEpoch(epoch, root, paid) from the settler key; the hash, or undefined when the
 * contract says another attempt's post landed meanwhile (the caller's check decides).
 */
async function sendPost(chain: SettlementChain, epoch: number, root: Hex, paid: string): Promise<Hex | undefined> {
  try {
    const { request } = await chain.publicClient.simulateContract({
      account: chain.wallet.account,
      address: chain.distributor,
      abi: rewardsDistributorAbi,
      functionName: 'postEpoch',
      args: [BigInt(epoch), root, BigInt(paid)],
    });
    return await chain.wallet.writeContract(request);
  } catch (err) {
    const name = revertName(err);
    // Another attempt's transaction landed meanwhile: the check below decides.
    if (name === 'EpochAlreadyPosted') return undefined;
    if (name) throw fail(settlementErrors.postRejected, `the distributor refused postEpoch(${epoch}): ${name}`);
    throw err; // RPC trouble: retry
  }
}

/** Whether the chain has `root` for `epoch` ('posted'), none yet ('absent'); another root fails for good. */
async function checkPosted(chain: SettlementChain, epoch: number, root: Hex): Promise<'posted' | 'absent'> {
  const onChain = await readRoot(chain, epoch);
  if (onChain === root) return 'posted';
  if (onChain === zeroHash) return 'absent';
  throw fail(settlementErrors.rootMismatch, `epoch ${epoch} already has root ${onChain} on chain, but settlement computed ${root}: not posting; investigate before anything else`);
}

/**
 * Posts the epoch's root and total from the settler key, unless the chain already has it:
 * `epochRoot(epoch)` equal to ours means an earlier attempt posted it; a different non-zero
 * root fails loudly and for good. The transaction hash is recorded right after sending, so
 * a retry waits for that transaction instead of sending another; if the hash was lost (a
 * crash in between), the contract refuses a second post (EpochAlreadyPosted).
 */
async function postEpochRoot(ctx: SettlementContext, epoch: number): Promise<EpochSummary> {
  checkEpoch(epoch);
  const chain = requireChain(ctx);
  const doc = await load(ctx, epoch);
  if (doc.status === 'posted' || isFinalEpochStatus(doc.status)) return summarize(doc);
  if (doc.status !== 'computed' || !doc.root || !doc.paid) throw fail(settlementErrors.wrongState, `epoch ${epoch} is ${doc.status}, not computed`);
  const root = doc.root;

  // The API must be able to serve every proof of a root before anyone can claim against it.
  const stored = await ctx.proofs.countDocuments({ epoch, root });
  if (stored !== doc.operators) throw fail(settlementErrors.proofsMissing, `epoch ${epoch}: ${stored} of ${doc.operators} proofs stored for root ${root}; refusing to post`);

  let txHash = doc.postTx;
  let state = await checkPosted(chain, epoch, root);
  if (state === 'absent' && txHash) {
    // An earlier attempt sent a transaction: wait for it rather than send a second one.
    await receiptOf(chain, txHash, 60_000);
    state = await checkPosted(chain, epoch, root);
  }
  if (state === 'absent') {
    const hash = await sendPost(chain, epoch, root, doc.paid);
    if (hash) {
      txHash = hash;
      await ctx.probe('post-sent', epoch);
      await ctx.epochs.updateOne({ _id: epoch, status: 'computed' }, { $set: { postTx: hash } });
      const receipt = await receiptOf(chain, hash, 120_000);
      if (!receipt) throw ApplicationFailure.retryable(`postEpoch(${epoch}) transaction ${hash} not mined yet`, epochPostPending);
    }
    state = await checkPosted(chain, epoch, root);
    if (state === 'absent') throw ApplicationFailure.retryable(`postEpoch(${epoch}) not visible on chain yet`, epochPostPending);
  }
  await ctx.epochs.updateOne(
    { _id: epoch, status: 'computed' },
    { $set: { status: 'posted', chainId: chain.chainId, distributor: chain.distributor, postedAt: new Date(ctx.now()), ...(txHash ? { postTx: txHash } : {}) } },
  );
  await ctx.probe('posted', epoch);
  return summarize(await load(ctx, epoch));
}

/**
 * Waits until the EpochPosted event is `confirmations` blocks deep, then marks the epoch
 * settled. If the event is gone (a reorg dropped the post), the record goes back to
 * 'computed' and the workflow posts again.
 */
async function confirmEpoch(ctx: SettlementContext, epoch: number): Promise<EpochSummary> {
  checkEpoch(epoch);
  const chain = requireChain(ctx);
  const doc = await load(ctx, epoch);
  if (isFinalEpochStatus(doc.status)) return summarize(doc);
  if (doc.status !== 'posted') throw fail(settlementErrors.wrongState, `epoch ${epoch} is ${doc.status}, not posted`);
  const missing = async () => {
    await ctx.epochs.updateOne({ _id: epoch, status: 'posted' }, { $set: { status: 'computed' }, $unset: { postTx: '' } });
    return fail(settlementErrors.postMissing, `the EpochPosted event of epoch ${epoch} is not on chain any more: posting again`);
  };
  let log = await findPostLog(chain, epoch, doc);
  if (!log) throw await missing();
  if (log.args.root !== doc.root) throw fail(settlementErrors.rootMismatch, `epoch ${epoch} was posted with root ${log.args.root}, but settlement computed ${doc.root}`);
  if (chain.confirmations > 1) {
    const target = log.blockNumber + BigInt(chain.confirmations - 1);
    await heartbeating(async () => {
      while ((await chain.publicClient.getBlockNumber({ cacheTime: 0 })) < target) await pause(chain.pollingIntervalMs);
    });
    // The event must still be in the same block once it is deep enough.
    const again = await findPostLog(chain, epoch, { ...doc, postTx: log.transactionHash });
    if (!again || again.blockHash !== log.blockHash) throw await missing();
    log = again;
  }
  await ctx.epochs.updateOne(
    { _id: epoch, status: 'posted' },
    { $set: { status: 'settled', settledAt: new Date(ctx.now()), postTx: log.transactionHash, postBlock: log.blockNumber.toString() } },
  );
  await ctx.probe('settled', epoch);
  return summarize(await load(ctx, epoch));
}

/**
 * The epochs the weekly tick should settle, in order: after the last settled one (or, on a
 * network that never settled, just the last complete epoch: it sweeps up every earlier
 * accrual) up to the last complete epoch; an unfinished one first.
 */
async function epochsDue(ctx: SettlementContext): Promise<number[]> {
  const last = lastCompleteEpoch(ctx.now(), ctx.schedule);
  if (last < 0) return [];
  const latest = await ctx.epochs.find({}, { projection: { _id: 1, status: 1 } }).sort({ _id: -1 }).limit(1).next();
  if (!latest) return [last];
  const from = isFinalEpochStatus(latest.status) ? latest._id + 1 : latest._id;
  const due: number[] = [];
  for (let e = from; e <= last; e++) due.push(e);
  return due;
}

/** The epoch's record, or null when it was never closed. */
async function epochStatus(ctx: SettlementContext, epoch: number): Promise<EpochSummary | null> {
  checkEpoch(epoch);
  const doc = await ctx.epochs.findOne({ _id: epoch });
  return doc ? summarize(doc) : null;
}

/** The settlement steps as activities (see the top of this file for what each one does). */
export function createSettlementActivities(deps: SettlementDeps) {
  const ctx = contextOf(deps);
  return {
    closeEpoch: (epoch: number): Promise<EpochSummary> => closeEpoch(ctx, epoch),
    computeEpoch: (epoch: number): Promise<EpochSummary> => computeEpoch(ctx, epoch),
    postEpochRoot: (epoch: number): Promise<EpochSummary> => postEpochRoot(ctx, epoch),
    confirmEpoch: (epoch: number): Promise<EpochSummary> => confirmEpoch(ctx, epoch),
    epochsDue: (): Promise<number[]> => epochsDue(ctx),
    epochStatus: (epoch: number): Promise<EpochSummary | null> => epochStatus(ctx, epoch),
  };
}

export type SettlementActivities = ReturnType<typeof createSettlementActivities>;
