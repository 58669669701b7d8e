#!/usr/bin/env node
// The test entry point of gitblock-node (test/faulty-node.ts), run through tsx like the real one.
import { register } from 'tsx/esm/api';

register();
await import('./faulty-node.ts');
