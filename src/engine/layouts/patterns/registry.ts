/**
 * Every expert layout pattern, in the order they are tried. The specific ones come first: a GPT-OSS
 * MXFP4 layer also has names a looser pattern could half-match.
 */
import { dbrxPattern } from './dbrx';
import { fusedExpertsPattern } from './fused-experts';
import { gptOssMxfp4Pattern } from './gpt-oss-mxfp4';
import { groupedGemmPattern } from './grouped-gemm';
import { inputLinearPattern } from './input-linear';
import { perExpertPattern } from './per-expert';
import { stackedExpertsPattern } from './stacked-experts';
import type { LayoutPattern } from './types';

export const LAYOUT_PATTERNS: readonly LayoutPattern[] = [gptOssMxfp4Pattern, fusedExpertsPattern, inputLinearPattern, dbrxPattern, groupedGemmPattern, stackedExpertsPattern, perExpertPattern];
