import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { getAddress } from 'viem';
import { hexAddressSchema } from '../../domain/registration.ts';
import { rewardsViewSchema } from '../../domain/rewards-view.ts';
import type { GatewayDeps } from '../deps.ts';
import type { RewardsView, RewardsViews } from '../rewards-view.ts';
import { errorResponses } from '../schemas/common.ts';

/**
 * An address in any case, as `GET /v1/nodes?operator=` takes one: a lookup in public data, whose
 * document can say exactly what it accepts (no pattern can say whether a mixed case is a valid
 * EIP-55 checksum). Where an address is signed for, the checksum is checked (domain/registration.ts).
 */
const operatorParam = z.object({ operator: hexAddressSchema });

/**
 * `GET /v1/rewards/<operator>`: what an operator has earned: accrued and not yet settled, and
 * per settled epoch the amount with its Merkle proof and whether it was claimed (read on
 * chain). Public, like the chain it mirrors: no API key.
 */
export const rewardRoutes: FastifyPluginAsyncZod<{ deps: GatewayDeps; rewards: RewardsViews }> = async (app, { rewards }) => {
  const schema = { tags: ['rewards'], summary: "An operator's rewards and proofs", params: operatorParam, response: { 200: rewardsViewSchema, ...errorResponses() } };
  app.get('/v1/rewards/:operator', { schema }, async (request): Promise<RewardsView> => rewards.fresh(getAddress(request.params.operator.toLowerCase())));
};
