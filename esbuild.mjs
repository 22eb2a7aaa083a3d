// Builds every shipped bundle. Node bundles are CommonJS (VS Code loads extensions as CJS);
// onnxruntime-node is a native addon and stays external (resolved from node_modules at run time).
import * as esbuild from 'esbuild';
import { chmodSync, existsSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

const nodeCommon = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  external: ['onnxruntime-node', 'vscode'],
  logLevel: 'warning',
};

const targets = [
  { ...nodeCommon, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  { ...nodeCommon, entryPoints: ['src/worker/main.ts'], outfile: 'dist/worker.js' },
  { ...nodeCommon, entryPoints: ['src/engine/numerics/eigen-thread.ts'], outfile: 'dist/eigen-thread.js' },
  { ...nodeCommon, entryPoints: ['src/engine/numerics/spectrum-thread.ts'], outfile: 'dist/spectrum-thread.js' },
  { ...nodeCommon, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' },
  { ...nodeCommon, entryPoints: ['bench/bench.ts'], outfile: 'dist/bench.js' },
  { ...nodeCommon, entryPoints: ['bench/memory-bench.ts'], outfile: 'dist/memory-bench.js' },
  { ...nodeCommon, entryPoints: ['bench/spectra-bench.ts'], outfile: 'dist/spectra-bench.js' },
  { ...nodeCommon, entryPoints: ['bench/provenance-bench.ts'], outfile: 'dist/provenance-bench.js' },
  { ...nodeCommon, entryPoints: ['bench/provenance-calibration.ts'], outfile: 'dist/provenance-calibration.js' },
  {
    entryPoints: ['webview/main.ts'],
    outfile: 'dist/webview.js',
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
  },
].filter((t) => existsSync(t.entryPoints[0]));

if (watch) {
  for (const t of targets) (await esbuild.context(t)).watch();
} else {
  await Promise.all(targets.map((t) => esbuild.build(t)));
  // dist/cli.js is package.json's bin: npx and npm link run it directly, through its #! line.
  chmodSync('dist/cli.js', 0o755);
}
