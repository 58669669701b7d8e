/**
 * The edge over TLS, as in production: a real gitblock-node given the edge's CA (`--edge-ca`)
 * registers, opens its session and serves through it; a plaintext client gets nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectMongo, type MongoHandle } from '../connections/mongo.ts';
import { connectTemporalClient, connectWorker } from '../connections/temporal.ts';
import { tokenSubject, type InferInput } from '../domain/inference.ts';
import { startTestEdge, type TestEdge } from '../test/edge.ts';
import { stack, unique, workflowBundle } from '../test/helpers.ts';
import { startNodeProcess, type NodeProcess } from '../test/node-process.ts';
import { EdgeClient, EdgeError, edgeTransport } from '../workers/node/edge-client.ts';
import { inferenceWorkflow } from '../workflows/inference.ts';

let mongo: MongoHandle;
let edge: TestEdge;
/** The CA's certificate: what a node is given with --edge-ca. */
let certFile: string;
const nodes: NodeProcess[] = [];

beforeAll(async () => {
  // A private CA and the edge's certificate for the loopback address, as an operator would set up.
  const dir = mkdtempSync(join(tmpdir(), 'gitblock-edge-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '1', '-subj', '/CN=gitblock test CA');
  openssl('req', ...ecKey, '-keyout', file('edge.key'), '-out', file('edge.csr'), '-subj', '/CN=localhost');
  writeFileSync(file('edge.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  openssl('x509', '-req', '-in', file('edge.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file('edge.crt'), '-days', '1', '-extfile', file('edge.ext'));
  certFile = file('ca.crt');
  const keyFile = file('edge.key');
  const chainFile = file('edge.crt');
  mongo = await connectMongo(stack().mongodbUri, unique('edge-tls'));
  edge = await startTestEdge({ db: mongo.db, controlTaskQueue: unique('actors'), tls: { cert: readFileSync(chainFile), key: readFileSync(keyFile) } });
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  await edge?.stop();
  await mongo?.db.dropDatabase().catch(() => {});
  await mongo?.[Symbol.asyncDispose]();
});

describe('the edge over TLS', () => {
  it('chooses TLS for any edge not on this machine unless told otherwise', () => {
    expect(edgeTransport('127.0.0.1:7443', {})).toEqual({ tls: false });
    expect(edgeTransport('localhost:7443', {})).toEqual({ tls: false });
    expect(edgeTransport('edge.example.org:7443', {})).toEqual({ tls: true });
    expect(edgeTransport('edge.example.org:7443', { plaintext: true })).toEqual({ tls: false });
    expect(edgeTransport('127.0.0.1:7443', { ca: Buffer.from('pem') })).toEqual({ tls: true, ca: Buffer.from('pem') });
  });

  it('refuses a plaintext client, and answers one that trusts its certificate', async () => {
    const plain = new EdgeClient(edge.address, { tls: false });
    const refused = await plain.info().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(EdgeError);
    expect((refused as EdgeError).grpcCode).toBe(grpc.status.UNAVAILABLE);
    plain.close();
    const trusting = new EdgeClient(edge.address, { tls: true, ca: readFileSync(certFile) });
    expect((await trusting.info()).audience).toBe('gitblock-edge');
    trusting.close();
  });

  it('serves a real node that joins with --edge-ca', async () => {
    const node = await startNodeProcess({ nodeId: unique('tls'), edge: edge.address, extraArgs: ['--edge-ca', certFile] });
    nodes.push(node);
    const taskQueue = unique('control');
    const worker = await Worker.create({ connection: await connectWorker({ address: stack().temporalAddress, namespace: stack().temporalNamespace }), taskQueue, workflowBundle: await workflowBundle() });
    await using temporal = await connectTemporalClient({ address: stack().temporalAddress, namespace: stack().temporalNamespace });
    const requestId = unique('r');
    const input: InferInput = { requestId, modelId: 'gitblock-tiny', prompt: 'The sea', sampling: { temperature: 0, maxTokens: 8 }, subject: tokenSubject(requestId) };
    const outcome = await worker.runUntil(temporal.workflow.execute(inferenceWorkflow, { taskQueue, workflowId: `req-${requestId}`, args: [input, [node.nodeId]] }));
    expect(outcome.result.nodeId).toBe(node.nodeId);
    expect(outcome.result.tokens).toHaveLength(8);
    expect(outcome.attempts).toEqual([{ taskQueue: `node.${node.nodeId}`, outcome: 'ok' }]);
  });
});
