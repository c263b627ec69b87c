#!/usr/bin/env node
// the command as one bundled file (scripts/build-cli.mjs, run by `npm run build`)
import "../dist/cli/shimmy.js"
