/**
 * Error codes in words. The worker's codes are for scripts and logs; the panel and notifications
 * say what went wrong in a heading (the message itself names the file, tensor and problem).
 * Shared by the host (notifications) and the webview (the panel's error box).
 */
const TITLES: Readonly<Record<string, string>> = {
  io: 'Could not read the file',
  format: 'The checkpoint file is damaged or not a safetensors file',
  dtype: 'Unsupported weight format',
  layout: 'The tensors do not match the model family',
  'not-moe': 'Not a Mixture-of-Experts model',
  'not-found': 'Not found',
  'hostile-path': 'The index points outside the model folder',
  'non-finite': 'A weight holds NaN or infinite values',
  auth: 'The hub refused access (a token is needed)',
  network: 'The network failed',
  offline: 'Offline, and the model is not in the local cache',
  'range-unsupported': 'The server cannot send parts of files',
  usage: 'Invalid options',
  'worker-crashed': 'The compute worker stopped unexpectedly',
  interrupted: 'The analysis was interrupted',
  internal: 'Internal error',
};

export function errorTitle(code: string): string {
  return TITLES[code] ?? 'The analysis failed';
}

/** Extra advice for codes where the message alone does not say what to do. */
export function errorAdvice(code: string): string | null {
  switch (code) {
    case 'worker-crashed':
      return 'This usually means the system ran out of memory. Finished layers are kept above; analyse fewer layers (setting "Layers to analyse") or sample experts, then run again.';
    case 'auth':
      return 'Set a token with "MoE Inspector: Set Hugging Face token".';
    case 'range-unsupported':
      return 'Turn on the setting "Allow full download" to fetch whole files from such a server.';
    default:
      return null;
  }
}
