/**
 * Node sessions: a signed `EdgeSession` (domain/edge-session.ts) is checked against the node's
 * registration in MongoDB and traded for a random token that the node sends with every call.
 * Tokens live in this edge's memory: a node that reaches another edge opens a session there.
 */
import { randomBytes } from 'node:crypto';
import { getAddress } from 'viem';
import type { Db } from 'mongodb';
import { edgeSessionBodySchema, edgeSessionTypedData, type EdgeSessionBody, type EdgeSessionFields } from '../domain/edge-session.ts';

import { authenticate, consumeNonce, type NonceStore, type SignedFailure, type SignedKind } from '../gateway/registration/signed.ts';
import { BaseError } from '../domain/errors.ts';
import { store } from '../store/index.ts';

export interface NodeSession {
  nodeId: string;
  operator: string;
  /** Models the node registered, with the sha256 of each file (no 0x). */
  models: Map<string, string>;
  slots: number;
  /** Unix ms. */
  expiresAt: number;
}

export type SessionErrorCode = `SESSION_${SignedFailure}` | 'SESSION_NOT_REGISTERED' | 'SESSION_UNKNOWN';

export class SessionError extends BaseError<SessionErrorCode> {
  override readonly name = 'SessionError';
  constructor(code: SessionErrorCode, message: string) {
    super(message, { code });
  }
}

const sessionKind: SignedKind<EdgeSessionBody, EdgeSessionFields> = {
  noun: 'session',
  schema: edgeSessionBodySchema,
  split: (body) => ({ fields: body.session, signature: body.signature }),
  typedData: (chainId, fields) => edgeSessionTypedData(chainId, fields),
};

const fail = (failure: SignedFailure, message: string) => new SessionError(`SESSION_${failure}`, message);

export interface SessionDeps {
  db: Db;
  chainId: number;
  audience: string;
  nonces: NonceStore;
  /** Unix ms. */
  now?: () => number;
}

export class SessionStore {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly now: () => number;

  constructor(private readonly deps: SessionDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Opens a session for a signed body. Cheap checks first; the nonce is consumed only after
   * the signature holds, so a forger cannot burn an operator's nonces.
   */
  async open(body: unknown): Promise<{ token: string; session: NodeSession }> {
    const { fields, signer } = await authenticate(sessionKind, body, { chainId: this.deps.chainId, now: () => Math.floor(this.now() / 1000) }, fail);
    const operator = getAddress(fields.operator);
    if (signer !== operator) throw new SessionError('SESSION_BAD_SIGNATURE', `session is not signed by operator ${operator}`);
    if (fields.audience !== this.deps.audience) throw new SessionError('SESSION_INVALID', `session is for ${JSON.stringify(fields.audience)}, this edge is ${JSON.stringify(this.deps.audience)}`);
    const registration = await store(this.deps.db).registrations.findOne({ _id: fields.nodeId });
    if (!registration || registration.operator.toLowerCase() !== operator.toLowerCase()) {
      throw new SessionError('SESSION_NOT_REGISTERED', `node ${fields.nodeId} is not registered to ${operator}: register it first`);
    }
    await consumeNonce(sessionKind, signer, fields, this.deps.nonces, fail);
    const session: NodeSession = {
      nodeId: fields.nodeId,
      operator,
      models: new Map(registration.models.map((m) => [m, registration.modelHashes?.[m] ?? ''])),
      slots: fields.slots,
      expiresAt: fields.expiry * 1000,
    };
    const token = randomBytes(32).toString('base64url');
    this.sessions.set(token, session);
    this.prune();
    return { token, session };
  }

  /** The live session a token names; unknown and expired tokens are refused alike. */
  get(token: string | undefined): NodeSession {
    const session = token ? this.sessions.get(token) : undefined;
    if (!session) throw new SessionError('SESSION_UNKNOWN', 'no session: open one with a signed EdgeSession');
    if (session.expiresAt <= this.now()) {
      throw new SessionError('SESSION_EXPIRED', 'session expired: open a new one');
    }
    return session;
  }

  private prune(): void {
    const now = this.now();
    // Kept a minute past expiry, so a late call hears "expired" rather than "no session".
    for (const [token, s] of this.sessions) if (s.expiresAt + 60_000 <= now) this.sessions.delete(token);
  }
}
