#!/usr/bin/env node
import { interruptOnSigint, main } from './main.js';

const ac = interruptOnSigint(process);
process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: ac.signal,
});
