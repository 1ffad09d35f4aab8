// The command line from source, so these tests need no build: `node --import tsx test/audit/bin.ts …`.
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
