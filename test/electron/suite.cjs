// Runs inside the VS Code extension host (test-electron's extensionTestsPath): checks that the
// extension activates and registers every contributed command.
const assert = require('node:assert/strict');
const vscode = require('vscode');
const pkg = require('../../package.json');

exports.run = async function run() {
  const ext = vscode.extensions.getExtension(`${pkg.publisher}.${pkg.name}`);
  assert.ok(ext, 'extension present');
  await ext.activate();
  const all = await vscode.commands.getCommands(true);
  for (const c of pkg.contributes.commands) {
    if (c.command === 'moeInspector.test.selfCheck') continue; // registered only with MOE_INSPECTOR_TEST_HOOKS
    assert.ok(all.includes(c.command), `command ${c.command} registered`);
  }
};
