#!/usr/bin/env node
// Thin launcher: the command line lives in dist/cli (built by `npm ci` through `prepare`).
import { main } from '../dist/cli/main.js';

const code = await main(process.argv);
process.exitCode = code;
