/**
 * Which of two ways of running the model is faster on this host now. Each way's recent time per
 * input element is kept as a moving average; the faster one runs, and now and then a run goes to
 * the other one (a probe) so its average follows the host.
 *
 * Used twice. For one line, the session whose threads spin within a run (faster on idle cores: 13.7
 * against 18.0 ms per OCR line) or the one whose threads never spin (faster when other processes
 * share the cores: 30.7 against 69.3 ms at load 12; bench/README.md, "Seventh round"); see
 * session-thread.ts. For a batch of several, one run of the batch or its lines side by side on
 * single-thread sessions (on an AVX-512 Xeon 99.5 lines/s against 57.9 for batches of 4, on the
 * AMD EPYC of earlier rounds batches won; bench/README.md, "Eleventh round"); see model-runner.ts.
 *
 * A probe of the slower way is a slow run, and every request in it or behind it waits for it. For a
 * batch that is a whole batch: the bench's slow model took 227 ms for a batch of 4 as its lines
 * against 80 ms as one batch, and with a probe every 32nd batch that was the slowest wait of a
 * high-priority tenant, every 2.7 s (bench/README.md, "Fourteenth round"). So with `maxProbeEvery`
 * above `probeEvery` (model-runner.ts's batch choice), a probe that finds its way clearly slower
 * (PROBE_MARGIN) doubles the gap to the next one, up to `maxProbeEvery` runs; a probe that comes
 * close, or is faster, brings the gap back to `probeEvery`, as does any change of the choice. The
 * chosen way is timed on every run, so a host that slows it down still changes the choice at once;
 * only finding that the other way got faster waits for the next probe. The single-line choice keeps
 * probing every 32nd line: a probe costs one line a few ms, and thinning them out did no better at
 * one connection (slightly worse, within the spread, in one side-by-side run). Pure: the caller
 * times the runs.
 */
/** The weight of a probe's run in its way's average (see record). */
const PROBE_WEIGHT = 0.5;

/**
 * A probe that finds its way slower than the chosen one's average by more than this fraction, in
 * its own run and in its average, confirms the choice. In the worker, on one core with its main
 * thread, the OCR model's batches of 8 took ~165 ms as lines and ~226 ms as one batch, but for
 * stretches the two averages came within 10-30% of each other; a small margin let one unlucky probe
 * keep the slower way for hundreds of runs.
 */
const PROBE_MARGIN = 0.25;

export class FasterChoice<Way extends string> {
  private readonly average = new Map<Way, number>();
  private readonly recorded = new Map<Way, number>();
  /** Runs since the last probe, and the runs from one probe to the next now. */
  private sinceProbe = 0;
  private probeGap: number;

  /**
   * @param ways the two ways; the first is tried first and wins a tie.
   * @param probeEvery one run in this many goes to the way not chosen while the choice is unsettled
   *   (at least 2).
   * @param weight the weight of a new run in the moving average (0-1].
   * @param maxProbeEvery the longest gap between probes once they keep confirming the choice (by
   *   default `probeEvery`: probes never thin out).
   */
  constructor(
    private readonly ways: readonly [Way, Way],
    private readonly probeEvery = 32,
    private readonly weight = 0.2,
    private readonly maxProbeEvery = probeEvery,
  ) {
    if (
      !(probeEvery >= 2) ||
      !(maxProbeEvery >= probeEvery) ||
      !(weight > 0 && weight <= 1) ||
      ways[0] === ways[1]
    )
      throw new Error("bad FasterChoice settings");
    this.probeGap = probeEvery;
  }

  /**
   * The way of the next run. Until both have been timed, each is tried in turn (a way's first run
   * is not counted: it may be its first at this shape).
   */
  next(): Way {
    const [first, second] = this.ways;
    if (!this.average.has(first)) return first;
    if (!this.average.has(second)) return second;
    const best = this.best() ?? first;
    if (++this.sinceProbe < this.probeGap) return best;
    this.sinceProbe = 0;
    return best === first ? second : first;
  }

  /** Records that a run of `elements` input elements took `ms` the way `way`. */
  record(way: Way, ms: number, elements: number): void {
    if (!(ms >= 0) || !(elements > 0) || !this.ways.includes(way)) return;
    const seen = this.recorded.get(way) ?? 0;
    this.recorded.set(way, seen + 1);
    if (seen === 0) return;
    const perElement = ms / elements;
    const before = this.average.get(way);
    const chosen = this.best();
    const probe = chosen !== undefined && chosen !== way;
    // A probe counts more: it is rare, and the host may have changed a lot since the last one.
    const weight = probe ? PROBE_WEIGHT : this.weight;
    const average = before === undefined ? perElement : before + weight * (perElement - before);
    if (probe) {
      // Both this run and the way's average clearly slower: one noisy probe does not settle it.
      const bar = this.average.get(chosen)! * (1 + PROBE_MARGIN);
      const slower = perElement > bar && average > bar;
      this.probeGap = slower ? Math.min(this.probeGap * 2, this.maxProbeEvery) : this.probeEvery;
    }
    this.average.set(way, average);
    if (chosen !== undefined && this.best() !== chosen) {
      this.probeGap = this.probeEvery;
      this.sinceProbe = 0;
    }
  }

  /** Runs from one probe to the next now, for logs and tests. */
  get gap(): number {
    return this.probeGap;
  }

  /** The way with the lower average, once both have one. */
  best(): Way | undefined {
    const [first, second] = this.ways;
    const a = this.average.get(first);
    const b = this.average.get(second);
    if (a === undefined || b === undefined) return undefined;
    return b < a ? second : first;
  }

  /** The moving averages (ms per input element), for logs and tests. */
  averages(): Readonly<Record<Way, number | undefined>> {
    const [first, second] = this.ways;
    return { [first]: this.average.get(first), [second]: this.average.get(second) } as Record<
      Way,
      number | undefined
    >;
  }
}
