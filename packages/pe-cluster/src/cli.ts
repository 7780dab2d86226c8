#!/usr/bin/env node
import { main } from './main.js';

// Ctrl-C once: finish the running steps, start no new one, record the stop in the journal (exit 130).
// Ctrl-C twice: leave now.
const ac = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts++;
  if (interrupts === 1) {
    process.stderr.write('\ninterrupt: stopping after the running step (Ctrl-C again to quit now)\n');
    ac.abort();
  } else process.exit(130);
});

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: ac.signal });
