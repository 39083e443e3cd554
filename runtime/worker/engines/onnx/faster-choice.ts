/**
 * Which of two ways of running the model is faster on this host now. Each way's recent time per
 * input element is kept as a moving average; the faster one runs, and every `probeEvery`-th run
 * goes to the other one so its average follows the host. Pure: the caller times the runs.
 *
 * Used twice. For one line, the session whose threads spin within a run (faster on idle cores: 13.7
 * against 18.0 ms per OCR line) or the one whose threads never spin (faster when other processes
 * share the cores: 30.7 against 69.3 ms at load 12; bench/README.md, "Seventh round"); see
 * session-thread.ts. For a batch of several, one run of the batch or its lines side by side on
 * single-thread sessions (on an AVX-512 Xeon 99.5 lines/s against 57.9 for batches of 4, on the
 * AMD EPYC of earlier rounds batches won; bench/README.md, "Eleventh round"); see model-runner.ts.
 */
/** The weight of a probe's run in its way's average (see record). */
const PROBE_WEIGHT = 0.5;

export class FasterChoice<Way extends string> {
  private readonly average = new Map<Way, number>();
  private readonly recorded = new Map<Way, number>();
  private runs = 0;

  /**
   * @param ways the two ways; the first is tried first and wins a tie.
   * @param probeEvery one run in this many goes to the way not chosen (at least 2).
   * @param weight the weight of a new run in the moving average (0-1].
   */
  constructor(
    private readonly ways: readonly [Way, Way],
    private readonly probeEvery = 32,
    private readonly weight = 0.2,
  ) {
    if (!(probeEvery >= 2) || !(weight > 0 && weight <= 1) || ways[0] === ways[1])
      throw new Error("bad FasterChoice settings");
  }

  /**
   * The way of the next run. Until both have been timed, each is tried in turn (a way's first run
   * is not counted: it may be its first at this shape).
   */
  next(): Way {
    this.runs++;
    const [first, second] = this.ways;
    if (!this.average.has(first)) return first;
    if (!this.average.has(second)) return second;
    const best = this.best() ?? first;
    if (this.runs % this.probeEvery !== 0) return best;
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
    // A probe counts more: it is rare, and the host may have changed a lot since the last one.
    const weight = this.best() === way ? this.weight : PROBE_WEIGHT;
    this.average.set(way, before === undefined ? perElement : before + weight * (perElement - before));
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
