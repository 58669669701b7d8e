/**
 * Every failure type the network's jobs report, spelled here once: the `type` of an
 * `ApplicationFailure`, the reason in an edge refusal's details. Workflows branch on these
 * (never on a class name or a message), so this module is pure and workflow code imports it.
 */

/** Inference on a node. */
export const inferErrors = {
  /** The input can never succeed anywhere (bad sampling, prompt longer than the context). */
  badInput: 'INFER_BAD_INPUT',
  /** This node does not serve the model. Another node may. */
  modelNotLoaded: 'INFER_MODEL_NOT_LOADED',
  /** Another attempt took over this request's stream; this one must stop. */
  superseded: 'INFER_SUPERSEDED',
  /** The client went away; the node stopped generating. */
  cancelled: 'INFER_CANCELLED',
  /** A node's claim of a final failure the edge did not see the cause of: failed over like any other. */
  unverified: 'INFER_UNVERIFIED_FAILURE',
  /** No node could take or finish the request. */
  noNode: 'NO_NODE_AVAILABLE',
} as const;

/** A request's own life. */
export const requestErrors = {
  /**
   * Its start reached Temporal after the gateway had stopped waiting for it (and so answered
   * the client 503): it ends at once, unserved and unpaid, instead of running for nobody.
   */
  startedTooLate: 'REQUEST_STARTED_TOO_LATE',
} as const;

/** Re-scoring a claimed answer on a verifier node. */
export const verifyErrors = {
  /** The verifier serves the model from another file than the claim names. */
  modelMismatch: 'VERIFY_MODEL_MISMATCH',
} as const;

/** Stable reasons carried in an edge refusal's details, e.g. `STREAM_SUPERSEDED: …`. */
export const edgeErrors = {
  superseded: 'STREAM_SUPERSEDED',
  notHeld: 'TASK_NOT_HELD',
  noSession: 'SESSION_REQUIRED',
  invalid: 'INVALID',
  /** A task the edge took back from a suspended or retired node. */
  nodeBarred: 'NODE_BARRED',
} as const;

/** Settlement and the ledger. All but `postPending` are non-retryable: retrying cannot fix them. */
export const settlementErrors = {
  /** The control worker has no deployment file or settler key: it cannot post roots. */
  notConfigured: 'SETTLEMENT_NOT_CONFIGURED',
  /** Not an epoch number. */
  invalidEpoch: 'EPOCH_INVALID',
  /** The epoch's week has not ended yet. */
  notOver: 'EPOCH_NOT_OVER',
  /** Epochs settle one after another; this one is not next. */
  outOfOrder: 'EPOCH_OUT_OF_ORDER',
  /** A step ran before the one it depends on. */
  wrongState: 'EPOCH_WRONG_STATE',
  /** The chain holds a different root for this epoch than the one computed: stop, a human must look. */
  rootMismatch: 'EPOCH_ROOT_MISMATCH',
  /** The proofs stored for the API do not match the computed root: refusing to post. */
  proofsMissing: 'EPOCH_PROOFS_MISSING',
  /** The posted root's transaction is no longer on chain (reorg): post again. */
  postMissing: 'EPOCH_POST_MISSING',
  /** The chain refused the post for a reason a retry cannot fix (role, pause, pool). */
  postRejected: 'EPOCH_POST_REJECTED',
  /** Invalid input to a ledger activity. */
  ledgerBadInput: 'LEDGER_BAD_INPUT',
  /** A ledger entry of the epoch has a malformed amount or operator: stop before paying anything. */
  ledgerCorrupt: 'LEDGER_CORRUPT',
} as const;

/** Retryable: the post's transaction is not mined or not visible yet. */
export const epochPostPending = 'EPOCH_POST_PENDING';

export const nonRetryableSettlementErrors: string[] = Object.values(settlementErrors);

type Values<T> = T[keyof T];
export type FailureType = Values<typeof inferErrors> | Values<typeof verifyErrors> | Values<typeof edgeErrors> | Values<typeof settlementErrors> | typeof epochPostPending;
