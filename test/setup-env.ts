// Runs in every test process before the tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';

// The Temporal SDK's worker logs are noise at INFO.
Runtime.install({ logger: new DefaultLogger('WARN') });

// Commands the tests run find a running `npm start` through <GITBLOCK_DATA_DIR>/endpoints.json
// (config/local-network.ts): a developer's own network must not stand in for the test stack.
process.env.GITBLOCK_DATA_DIR ||= mkdtempSync(join(tmpdir(), 'gitblock-test-data-'));
