// Runs in every test process before the tests: the Temporal SDK's worker logs are noise at INFO.
import { DefaultLogger, Runtime } from '@temporalio/worker';

Runtime.install({ logger: new DefaultLogger('WARN') });
