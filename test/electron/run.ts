/**
 * Runs the extension-host suite in a downloaded VS Code (Electron) via @vscode/test-electron, for
 * machines that can reach update.code.visualstudio.com. Not part of `npm test`: here VS Code cannot
 * be downloaded, and test/vscode/ covers the same ground in code-server.
 */
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main(): Promise<void> {
  const root = join(__dirname, '..', '..');
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: join(__dirname, 'suite.cjs'),
    launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
    extensionTestsEnv: { ORT_DISABLE_TELEMETRY: '1' },
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
