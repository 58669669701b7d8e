// Every workflow the workers register. Workflow files import only @temporalio/workflow,
// types, temporal.config.ts and the pure modules in domain/ (enforced by eslint.config.js).
export { smokeWorkflow } from './smoke.ts';
export { inferenceWorkflow } from './inference.ts';
export { requestWorkflow } from './request.ts';
export { nodeActorWorkflow } from './node-actor.ts';
export { spotCheckWorkflow } from './spot-check.ts';
export { settlementWorkflow, settlementTickWorkflow } from './settlement.ts';
export { floorWorkflow } from './floor.ts';
