/** What the stack's smoke workflow (activities/smoke.ts) writes: proof that MongoDB took a write. */
import { storedCollection } from './collection.ts';

export interface SmokeDoc {
  prompt: string;
  text: string;
  tokens: number;
  at: Date;
}

export const smoke = storedCollection<SmokeDoc>('smoke');
