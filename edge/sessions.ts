/**
 * Node sessions: a signed `EdgeSession` (domain/edge-session.ts) is checked against the node's
 * registration in MongoDB and traded for a random token that the node sends with every call.
 * Tokens live in this edge's memory: a node that reaches another edge opens a session there.
 */
import { randomBytes } from 'node:crypto';
import { getAddress, recoverTypedDataAddress, type Hex } from 'viem';
import type { Db } from 'mongodb';
import { checkSessionExpiry, edgeSessionBodySchema, edgeSessionTypedData, maxSessionLifetimeSeconds } from '../domain/edge-session.ts';
import type { NonceStore } from '../gateway/registration/verify.ts';

export interface NodeSession {
  nodeId: string;
  operator: string;
  /** Models the node registered, with the sha256 of each file (no 0x). */
  models: Map<string, string>;
  slots: number;
  /** Unix ms. */
  expiresAt: number;
}

export type SessionErrorCode = 'SESSION_INVALID' | 'SESSION_EXPIRED' | 'SESSION_BAD_SIGNATURE' | 'SESSION_REPLAYED' | 'SESSION_NOT_REGISTERED' | 'SESSION_UNKNOWN';

export class SessionError extends Error {
  override readonly name = 'SessionError';
  constructor(
    readonly code: SessionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

interface RegistrationDoc {
  _id: string;
  operator: string;
  models: string[];
  modelHashes?: Record<string, string>;
}

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
    const parsed = edgeSessionBodySchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new SessionError('SESSION_INVALID', `invalid session: ${issue.path.join('.') || '(body)'}: ${issue.message}`);
    }
    const { session: fields, signature } = parsed.data;
    const nowSeconds = Math.floor(this.now() / 1000);
    const expiry = checkSessionExpiry(fields.expiry, nowSeconds);
    if (expiry === 'expired') throw new SessionError('SESSION_EXPIRED', `session expired at ${fields.expiry}, now is ${nowSeconds}: sign a fresh one`);
    if (expiry === 'too-long-lived') throw new SessionError('SESSION_INVALID', `session expiry is more than ${maxSessionLifetimeSeconds} s away: check the node's clock`);
    if (fields.audience !== this.deps.audience) throw new SessionError('SESSION_INVALID', `session is for ${JSON.stringify(fields.audience)}, this edge is ${JSON.stringify(this.deps.audience)}`);

    let signer: string;
    try {
      signer = await recoverTypedDataAddress({ ...edgeSessionTypedData(this.deps.chainId, fields), signature: signature as Hex });
    } catch {
      throw new SessionError('SESSION_BAD_SIGNATURE', 'session signature is malformed');
    }
    const operator = getAddress(fields.operator);
    if (signer !== operator) throw new SessionError('SESSION_BAD_SIGNATURE', `session is not signed by operator ${operator}`);

    const registration = await this.deps.db.collection<RegistrationDoc>('node_registrations').findOne({ _id: fields.nodeId });
    if (!registration || registration.operator.toLowerCase() !== operator.toLowerCase()) {
      throw new SessionError('SESSION_NOT_REGISTERED', `node ${fields.nodeId} is not registered to ${operator}: register it first`);
    }
    if (!(await this.deps.nonces.consume(operator, fields.nonce, fields.expiry))) {
      throw new SessionError('SESSION_REPLAYED', `session nonce ${fields.nonce} was already used: sign a fresh one`);
    }
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
      this.sessions.delete(token!);
      throw new SessionError('SESSION_EXPIRED', 'session expired: open a new one');
    }
    return session;
  }

  private prune(): void {
    const now = this.now();
    for (const [token, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(token);
  }
}
