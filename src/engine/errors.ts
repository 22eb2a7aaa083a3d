/**
 * The one error type the engine throws for bad input. Every message names the file, the tensor
 * (where one is involved) and the problem, so a user can act on it without a stack trace.
 */
export type ErrorCode =
  | 'io' // cannot open/read a file
  | 'format' // corrupt or invalid safetensors / index / config
  | 'dtype' // unsupported or mismatched dtype
  | 'layout' // tensors do not match the family's expected layout
  | 'not-moe' // the model is not a Mixture-of-Experts model
  | 'not-found' // model, file, tensor or revision not found
  | 'hostile-path' // index points outside the model folder
  | 'non-finite' // NaN / Inf in a weight
  | 'auth' // 401/403 from the hub
  | 'network' // transport failure after retries
  | 'offline' // HF_HUB_OFFLINE set and nothing cached
  | 'range-unsupported' // server ignored HTTP Range
  | 'numerics' // an eigenvalue solver failed (names layer, projection and expert)
  | 'cancelled'
  | 'usage'; // bad command-line/API arguments

export class MoeInspectorError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly problem: string,
    readonly where: { file?: string; tensor?: string } = {},
  ) {
    super(formatMessage(problem, where));
    this.name = 'MoeInspectorError';
  }
}

function formatMessage(problem: string, where: { file?: string; tensor?: string }): string {
  const parts: string[] = [];
  if (where.file !== undefined) parts.push(where.file);
  if (where.tensor !== undefined) parts.push(`tensor "${shortName(where.tensor)}"`);
  return parts.length > 0 ? `${parts.join(': ')}: ${problem}` : problem;
}

export function isMoeInspectorError(e: unknown): e is MoeInspectorError {
  return e instanceof MoeInspectorError;
}

/** Real tensor names are short; a hostile one is cut so that the message stays readable. */
function shortName(name: string): string {
  return name.length <= MAX_NAME ? name : `${name.slice(0, MAX_NAME)}... (${name.length} characters)`;
}
const MAX_NAME = 200;
