/**
 * `GET /v1/rewards/<operator>`'s answer, as one schema: the gateway's route declares and checks
 * its response with it, and the node's `rewards` command validates what a gateway sent with it.
 * Amounts are decimal strings of GBT base units (uint256: at most 78 digits).
 */
import { z } from 'zod';

const hex = z.string().regex(/^0x[0-9a-fA-F]*$/);
const amount = z.string().regex(/^\d{1,78}$/);
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);

export const rewardsViewSchema = z.object({
  object: z.literal('rewards'),
  operator: address,
  accrued: z.object({ amount, requests: z.number().int().min(0) }),
  settling: amount,
  settled: amount,
  claimable: amount,
  claimed: amount,
  epochs: z.array(
    z.object({
      epoch: z.number().int().min(0),
      status: z.enum(['settling', 'claimable', 'claimed', 'settled']),
      amount,
      accrued: amount,
      root: hex,
      proof: z.array(hex).optional(),
      distributor: address.optional(),
      chainId: z.number().int().positive().optional(),
      postTx: hex.optional(),
    }),
  ),
});
