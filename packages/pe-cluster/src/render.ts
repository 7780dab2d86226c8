import type { FlowEvent, StepStatus } from '@pe-stack/pe-steps';

export interface Output {
  write(chunk: string): unknown;
}

function secs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One line per event, for logs and pipes. */
export function plainRenderer(out: Output): (e: FlowEvent) => void {
  return (e) => {
    const time = e.t.slice(11, 19);
    switch (e.type) {
      case 'flow-start':
        out.write(
          `${time} ${e.dryRun ? 'plan' : 'run'} ${e.flow} ${e.runId}: ${e.steps.length} steps${e.resumedFrom ? `, resuming (stopped at ${e.resumedFrom})` : ''}${e.journal ? `, journal ${e.journal}` : ''}\n`,
        );
        break;
      case 'step-start':
        out.write(`${time} [${e.host}] ${e.id}: ${e.title}\n`);
        break;
      case 'step-check':
        break;
      case 'step-skip':
        out.write(`${time} [${e.host}] ${e.id}: done already (${e.why})\n`);
        break;
      case 'step-done':
        out.write(`${time} [${e.host}] ${e.id}: ok, ${e.changes} change${e.changes === 1 ? '' : 's'}, ${secs(e.ms)}\n`);
        break;
      case 'step-planned':
        out.write(`${time} [${e.host}] ${e.id}: planned, ${e.changes} change${e.changes === 1 ? '' : 's'}\n`);
        break;
      case 'step-fail':
        out.write(`${time} [${e.host}] ${e.id}: FAILED ${e.error.code}: ${e.error.message}\n`);
        break;
      case 'flow-end': {
        const c = e.counts;
        out.write(
          `${time} ${e.flow} ${e.status}: ${c.done} done, ${c.skipped} already done, ${c.planned} planned, ${c.failed} failed, ${c['not-run']} not run, ${secs(e.ms)}\n`,
        );
        break;
      }
    }
  };
}

/** NDJSON: one event object per line (the caller adds the final result object). */
export function ndjsonRenderer(out: Output): (e: FlowEvent) => void {
  return (e) => out.write(`${JSON.stringify(e)}\n`);
}

const MARK: Record<StepStatus | 'running', string> = {
  done: '✔',
  skipped: '=',
  planned: '+',
  failed: '✘',
  'not-run': '·',
  running: '▸',
};

/**
 * A live step list on a terminal: one row per step with its state and
 * duration, redrawn in place. `stop()` leaves the final list on screen.
 */
export class TtyProgress {
  private rows: {
    key: string;
    host: string;
    title: string;
    state: StepStatus | 'running';
    started?: number;
    ms?: number;
    note?: string;
  }[] = [];
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private header = '';

  constructor(
    private readonly out: Output,
    private readonly columns = 100,
  ) {}

  readonly onEvent = (e: FlowEvent): void => {
    const row = 'key' in e ? this.rows.find((r) => r.key === e.key) : undefined;
    switch (e.type) {
      case 'flow-start':
        this.header = `${e.dryRun ? 'plan' : 'run'} ${e.flow} ${e.runId}${e.resumedFrom ? ` (resuming at ${e.resumedFrom})` : ''}`;
        this.rows = e.steps.map((s) => ({ key: s.key, host: s.host, title: s.title, state: 'not-run' }));
        this.timer = setInterval(() => this.draw(), 250);
        this.timer.unref();
        break;
      case 'step-start':
        if (row) Object.assign(row, { state: 'running', started: Date.now() });
        break;
      case 'step-skip':
        if (row) Object.assign(row, { state: 'skipped', ms: undefined, note: e.why });
        break;
      case 'step-done':
        if (row) Object.assign(row, { state: 'done', ms: e.ms });
        break;
      case 'step-planned':
        if (row) Object.assign(row, { state: 'planned', ms: e.ms });
        break;
      case 'step-fail':
        if (row) Object.assign(row, { state: 'failed', ms: e.ms, note: `${e.error.code}: ${e.error.message}` });
        break;
      case 'flow-end':
        this.header += ` — ${e.status} in ${secs(e.ms)}`;
        this.stop();
        return;
      default:
        return;
    }
    this.draw();
  };

  private draw(): void {
    const lines = [this.header];
    const hostWidth = Math.min(30, Math.max(4, ...this.rows.map((r) => r.host.length)));
    for (const r of this.rows) {
      const ms = r.state === 'running' && r.started ? Date.now() - r.started : r.ms;
      const dur = ms === undefined ? '' : ` ${secs(ms)}`;
      let line = `${MARK[r.state]} ${r.host.padEnd(hostWidth)} ${r.title}${dur}${r.note ? ` — ${r.note}` : ''}`;
      if (line.length > this.columns) line = `${line.slice(0, this.columns - 1)}…`;
      lines.push(line);
    }
    // move to the start of what was drawn before, clear to the end of the screen, draw again
    const up = this.drawn > 0 ? `\x1b[${this.drawn}F` : '';
    this.out.write(`${up}\x1b[J${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw();
  }
}
