import type { FastifyInstance } from 'fastify';
import { getAddress, isAddress } from 'viem';
import type { GatewayDeps } from '../deps.ts';
import { ApiError } from '../errors.ts';
import { operatorRewards, type RewardsView } from '../rewards-view.ts';

/**
 * `GET /v1/rewards/<operator>`: what an operator has earned: accrued and not yet settled, and
 * per settled epoch the amount with its Merkle proof and whether it was claimed (read on
 * chain). Public, like the chain it mirrors: no API key.
 */
export function rewardRoutes(app: FastifyInstance, deps: GatewayDeps) {
  app.get('/v1/rewards/:operator', { schema: { tags: ['rewards'] } }, async (request): Promise<RewardsView> => {
    const raw = (request.params as { operator: string }).operator;
    // Lower- or upper-case hex, or a valid EIP-55 checksum: a mistyped mixed-case address is refused.
    if (!isAddress(raw)) {
      throw new ApiError('invalid_body', `Invalid operator address ${JSON.stringify(raw.slice(0, 100))}: expected 0x and 40 hex digits (mixed case must be a valid checksum)`, 'operator');
    }
    const operator = getAddress(raw);
    return operatorRewards(deps, operator, request.log);
  });
}
