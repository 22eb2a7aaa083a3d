/**
 * Where a long run stands and how long it has left: layers done, the step in flight, bytes read,
 * and an ETA = elapsed * (1 - f) / f, f the share of the work done (whole layers plus the share of
 * the layer in flight the caller reports).
 */
import type { MoeLayerLayout } from '../layouts/types';
import type { RunProgress } from '../../shared/messages';

/** How progress names a layer: its index in a single stack, its name ("encoder.1") in models with layer groups. */
export function runLayerOf(layout: MoeLayerLayout): number | string {
  return layout.group === null ? (layout.layer as number) : layout.name;
}

export class RunTracker {
  private readonly started: number;
  private layersDone = 0;

  /**
   * @param layersTotal the layers this session runs
   * @param alreadyDone layers an earlier session of a resumed run finished: counted as done, but not
   *   in the rate (this session's elapsed time covers only its own layers)
   */
  constructor(
    private readonly layersTotal: number,
    private readonly bytesRead: () => number = () => 0,
    private readonly now: () => number = () => performance.now(),
    private readonly alreadyDone = 0,
  ) {
    this.started = now();
  }

  /** @param fractionOfLayer share of the layer in flight done, 0..1 */
  position(layer: number | string | null, step: string, expertsDone: number, expertsTotal: number, fractionOfLayer: number): RunProgress {
    const f = Math.min(1, (this.layersDone + Math.max(0, Math.min(1, fractionOfLayer))) / Math.max(1, this.layersTotal));
    const elapsed = (this.now() - this.started) / 1000;
    // Under a second or under 0.1% done, a rate says nothing yet.
    const etaSeconds = f >= 0.001 && elapsed >= 1 ? (elapsed * (1 - f)) / f : f >= 1 ? 0 : null;
    return { layersDone: this.alreadyDone + this.layersDone, layersTotal: this.alreadyDone + this.layersTotal, layer, step, expertsDone, expertsTotal, bytesRead: this.bytesRead(), etaSeconds };
  }

  layerDone(): void {
    this.layersDone++;
  }
}

/**
 * The share of one projection's time that pass one (base and cosines) takes, learned from the
 * projections finished so far (first guess 0.1: pass two's spectra dominate at real sizes).
 */
export class PassWeights {
  private pass1 = 0;
  private pass2 = 0;

  record(pass1Ms: number, pass2Ms: number): void {
    this.pass1 += pass1Ms;
    this.pass2 += pass2Ms;
  }

  pass1Share(): number {
    const total = this.pass1 + this.pass2;
    return total > 0 ? this.pass1 / total : 0.1;
  }
}
