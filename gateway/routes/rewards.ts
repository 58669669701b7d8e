import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getAddress, isAddress } from 'viem';
import { rewardsViewSchema } from '../../domain/rewards-view.ts';
import type { GatewayDeps } from '../deps.ts';
import type { RewardsView, RewardsViews } from '../rewards-view.ts';
import { errorResponses } from '../schemas/common.ts';

/** Lower- or upper-case hex, or a valid EIP-55 checksum: a mistyped mixed-case address is refused. */
const operatorParam = z.object({
  operator: z.string().max(100).refine((a) => isAddress(a), 'expected 0x and 40 hex digits (mixed case must be a valid checksum)'),
});

/**
 * `GET /v1/rewards/<operator>`: what an operator has earned: accrued and not yet settled, and
 * per settled epoch the amount with its Merkle proof and whether it was claimed (read on
 * chain). Public, like the chain it mirrors: no API key.
 */
export const rewardRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps; rewards: RewardsViews }> = async (app, { rewards }) => {
  const schema = { tags: ['rewards'], summary: "An operator's rewards and proofs", params: operatorParam, response: { 200: rewardsViewSchema, ...errorResponses() } };
  app.get('/v1/rewards/:operator', { schema }, async (request): Promise<RewardsView> => rewards.fresh(getAddress(request.params.operator)));
};
