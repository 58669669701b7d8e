/**
 * The request records behind `GET /v1/requests/<id>` and the status pages. A record grows with
 * its request's life: the gateway inserts it (`routing`), the request workflow completes it (the
 * node, the route and why, timings, usage, the accrual) and a spot check adds its verdict. Every
 * writer upserts by the request id, so a retried write never duplicates anything.
 */
import { storedCollection } from './collection.ts';

export type RequestStatus = 'routing' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface RequestDocument {
  _id: string;
  status: RequestStatus;
  /** The API key's id: a record is shown to its own key only. */
  keyId?: string;
  modelId?: string;
  kind?: string;
  stream?: boolean;
  /** The node that served the answer. */
  nodeId?: string;
  error?: string;
  verification?: { status: string; reason?: string; [detail: string]: unknown };
  accrual?: { status: string; amount: string; [detail: string]: unknown };
  usage?: { promptTokens?: number; completionTokens?: number; totalTokens?: number };
  timings?: { timeToFirstTokenMs?: number; totalMs?: number; [timing: string]: number | undefined };
  createdAt?: Date;
  updatedAt?: Date;
  /** The rest of the receipt (route, timings, usage, attempts...), as the request workflow records it. */
  [field: string]: unknown;
}

export const requests = storedCollection<RequestDocument>('requests', [
  // The status page's time series read the records updated since a moment.
  { key: { updatedAt: 1 } },
  // A node's page reads its last checks.
  { key: { nodeId: 1, updatedAt: -1 } },
]);
