import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds from a request to its last token: the same buckets for the network and the fallback, to compare. */
const latencyBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120];

/** Prometheus metrics of one gateway process, on its own registry (tests build several apps). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gitblock_gateway_' });
  return {
    registry,
    requests: new Counter({ name: 'gitblock_requests_total', help: 'Inference requests by model and outcome', labelNames: ['model', 'outcome'] as const, registers: [registry] }),
    tokens: new Counter({ name: 'gitblock_completion_tokens_total', help: 'Completion tokens served', labelNames: ['model'] as const, registers: [registry] }),
    latency: new Histogram({
      name: 'gitblock_request_seconds',
      help: 'Time from request to last token',
      labelNames: ['model', 'stream'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    liveNodes: new Gauge({ name: 'gitblock_live_nodes', help: 'Nodes the router would send work to now', registers: [registry] }),
    // The fallback provider's own: what the upstream served, how it failed, how long it took.
    fallbackRequests: new Counter({ name: 'gitblock_fallback_requests_total', help: 'Requests answered by the fallback provider, by model, stream and outcome', labelNames: ['model', 'stream', 'outcome'] as const, registers: [registry] }),
    fallbackErrors: new Counter({ name: 'gitblock_fallback_errors_total', help: 'Fallback requests that failed, by error code', labelNames: ['model', 'code'] as const, registers: [registry] }),
    fallbackLatency: new Histogram({
      name: 'gitblock_fallback_request_seconds',
      help: 'Time from the upstream call to its last token',
      labelNames: ['model', 'stream'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    /** Every answer, refusals included (401, 429, 503 ...), by route, HTTP status and error code. */
    responses: new Counter({ name: 'gitblock_http_responses_total', help: 'HTTP answers by route, status and error code', labelNames: ['route', 'status', 'code'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
