import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT, main } from './index.js';

/** Runs the CLI in process with an inventory path that does not exist: nothing here may need one. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['-i', '/nonexistent/inventory.yaml', ...args], {
    stdout: { write: (s: string) => ((stdout += s), true) },
    stderr: { write: (s: string) => ((stderr += s), true) },
    env: {},
  });
  return { code, stdout, stderr };
}

const COMMANDS = ['status', 'join', 'plan', 'standby', 'failover', 'rejoin', 'backup', 'restore'];

describe('pe-cluster --version and help', () => {
  it("--version prints pe-cluster's own package version", async () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const r = await cli([flag]);
      expect(r.code).toBe(EXIT.OK);
      expect(r.stdout.trim()).toBe(manifest.version);
    }
  });

  it('every command shows the global options and the exit codes', async () => {
    for (const c of COMMANDS) {
      const r = await cli([c, '--help']);
      expect(r.code, c).toBe(EXIT.OK);
      expect(r.stdout, c).toMatch(/Global Options:[\s\S]*--inventory[\s\S]*--json[\s\S]*--dry-run[\s\S]*--resume/);
      expect(r.stdout, c).toMatch(/Exit codes:[\s\S]*2 +bad input[\s\S]*130 +interrupted/);
    }
  });

  it('plan of an unknown flow says so before it reads the inventory, with the usage status', async () => {
    const r = await cli(['plan', 'nosuchflow']);
    expect(r.code).toBe(EXIT.BAD_INPUT);
    expect(r.stderr).toContain('unknown flow "nosuchflow"');
    expect(r.stderr).toContain('Known flows: join, standby, failover, rejoin');
    expect(r.stderr).not.toContain('inventory');
    const j = await cli(['--json', 'plan', 'nosuchflow']);
    expect(j.code).toBe(EXIT.BAD_INPUT);
    expect(JSON.parse(j.stdout.trim())).toMatchObject({ type: 'error', exitCode: 2, error: { code: 'E_USAGE' } });
  });
});
