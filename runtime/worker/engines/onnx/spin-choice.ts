/**
 * Which session runs a single-line (unbatched) run when the model has both: the one whose threads
 * spin within a run (faster on idle cores: 13.7 against 18.0 ms per OCR line) or the one whose
 * threads never spin (faster when other processes share the cores: 30.7 against 69.3 ms at load
 * 12; bench/README.md, "Seventh round"). Each session's recent time per input element is kept as a
 * moving average; the faster one runs, and every `probeEvery`-th run goes to the other one so its
 * average follows the host. Pure: the caller times the runs.
 */
export type SpinSession = "spinning" | "quiet";

const PROBE_WEIGHT = 0.5;

export class SpinChoice {
  private readonly average: Record<SpinSession, number | undefined> = {
    spinning: undefined,
    quiet: undefined,
  };
  private readonly recorded: Record<SpinSession, number> = { spinning: 0, quiet: 0 };
  private runs = 0;

  /**
   * @param probeEvery one run in this many goes to the session not chosen (at least 2).
   * @param weight the weight of a new run in the moving average (0-1].
   */
  constructor(
    private readonly probeEvery = 32,
    private readonly weight = 0.2,
  ) {
    if (!(probeEvery >= 2) || !(weight > 0 && weight <= 1)) throw new Error("bad SpinChoice settings");
  }

  /**
   * The session for the next single-line run. Until both have been timed, each is tried in turn
   * (a session's first run is not counted: it may be its first at this shape).
   */
  next(): SpinSession {
    this.runs++;
    const { spinning, quiet } = this.average;
    if (spinning === undefined) return "spinning";
    if (quiet === undefined) return "quiet";
    const best: SpinSession = this.best() ?? "spinning";
    if (this.runs % this.probeEvery !== 0) return best;
    return best === "spinning" ? "quiet" : "spinning";
  }

  /** Records that a run of `elements` input elements took `ms` in `session`. */
  record(session: SpinSession, ms: number, elements: number): void {
    if (!(ms >= 0) || !(elements > 0)) return;
    if (this.recorded[session]++ === 0) return;
    const perElement = ms / elements;
    const before = this.average[session];
    // A probe counts more: it is rare, and the host may have changed a lot since the last one.
    const weight = this.best() === session ? this.weight : PROBE_WEIGHT;
    this.average[session] = before === undefined ? perElement : before + weight * (perElement - before);
  }

  /** The session with the lower average, once both have one. */
  private best(): SpinSession | undefined {
    const { spinning, quiet } = this.average;
    if (spinning === undefined || quiet === undefined) return undefined;
    return quiet < spinning ? "quiet" : "spinning";
  }

  /** The moving averages (ms per input element), for logs and tests. */
  averages(): Readonly<Record<SpinSession, number | undefined>> {
    return { ...this.average };
  }
}
