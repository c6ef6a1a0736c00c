// Given to Node as `--import` by test/vitest.config.ts, so it runs first in
// every test process and again in every worker thread they start: a
// Worker's execArgv defaults to its parent's, and module.register() hooks
// apply only to the thread that registered them.
import { register } from 'node:module';

register(new URL('./typescript-hooks.mjs', import.meta.url));
