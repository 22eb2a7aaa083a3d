/** Validation of Hugging Face model ids typed by the user: `org/name` or `org/name@revision`. */

// The hub's own rules: repo ids are [A-Za-z0-9._-], no leading/trailing '-' or '.', no '--' or '..'.
const PART = /^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9._-]{1,96}(?<![.-])$/;
const REVISION = /^[A-Za-z0-9._\/-]{1,255}$/;

export interface HubModelId {
  readonly repo: string;
  readonly revision: string | null;
}

/** Returns null for a valid id, else the problem (shown under the input box as the user types). */
export function hubIdProblem(text: string): string | null {
  const s = text.trim();
  if (s === '') return 'Type a model id such as allenai/OLMoE-1B-7B-0924 or org/name@revision.';
  const [repo = '', revision, ...more] = s.split('@');
  if (more.length > 0) return 'Only one "@" is allowed (org/name@revision).';
  const parts = repo.split('/');
  if (parts.length !== 2) return 'A model id has exactly one "/": org/name.';
  for (const p of parts) if (!PART.test(p)) return `"${p}" is not a valid hub name: letters, digits, "-", "_", "." (max 96, no "--" or "..").`;
  if (revision !== undefined && (!REVISION.test(revision) || revision.includes('..'))) return `"${revision}" is not a valid revision (branch, tag or commit).`;
  return null;
}

export function parseHubId(text: string): HubModelId | null {
  if (hubIdProblem(text) !== null) return null;
  const [repo, revision] = text.trim().split('@');
  return { repo: repo!, revision: revision ?? null };
}
