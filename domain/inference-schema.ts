/**
 * Validation of inference inputs. Activities on GPU nodes re-check what the workflow sends,
 * since a node must never crash on a malformed task.
 */
import { z } from 'zod';

export const limits = {
  maxTokens: 8192,
  messages: 256,
  stopStrings: 4,
  stopLength: 64,
  contentChars: 200_000,
} as const;

export const samplingSchema = z.object({
  temperature: z.number().min(0).max(2),
  topP: z.number().gt(0).max(1).optional(),
  topK: z.number().int().min(1).max(1000).optional(),
  maxTokens: z.number().int().min(1).max(limits.maxTokens),
  stop: z.array(z.string().min(1).max(limits.stopLength)).max(limits.stopStrings).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
});

export const chatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string().max(limits.contentChars),
});

export const inferInputSchema = z
  .object({
    requestId: z.string().regex(/^[\w-]{1,64}$/),
    modelId: z.string().min(1).max(64),
    messages: z.array(chatMessageSchema).min(1).max(limits.messages).optional(),
    prompt: z.string().max(limits.contentChars).optional(),
    sampling: samplingSchema,
    subject: z.string().regex(/^gitblock\.tokens\.[\w-]{1,64}$/),
  })
  .refine((i) => (i.messages === undefined) !== (i.prompt === undefined), 'give exactly one of messages or prompt');
