import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DryRunHost, LocalHost } from '@pe-stack/pe-host';
import { resolveLayout } from '@pe-stack/pe-config-files';
import { McoError } from './errors.js';
import {
  Pe3Console,
  RAKE_RUN_MARKER,
  packRakeRuns,
  parseNameListing,
  parseRakeTask,
  parseVariableListing,
  parseVariablesArg,
  rakeArg,
  rakePrefix,
  rakeTask,
  variablesArg,
} from './rake.js';
import { FAKE_RAKE, pe3LayoutUnder, tempRoot } from '@pe-stack/testkit/mcollective';

describe('console rake arguments', () => {
  it('matches the PE 3 rake API documentation examples (shell quoting removed)', () => {
    // node:add['switch07.example.com','no mcollective\,network devices']
    expect(rakeTask('node:add', ['switch07.example.com', 'no mcollective,network devices'])).toBe(
      'node:add[switch07.example.com,no mcollective\\,network devices]',
    );
    // nodegroup:variables['load balancers','haproxy_application_port=3000\,haproxy_application_servers=web04.example.com\\\,web05.example.com\\\,web06.example.com']
    const word = rakeTask('nodegroup:variables', [
      'load balancers',
      variablesArg({
        haproxy_application_port: '3000',
        haproxy_application_servers: 'web04.example.com,web05.example.com,web06.example.com',
      }),
    ]);
    expect(word).toBe(
      'nodegroup:variables[load balancers,haproxy_application_port=3000\\,haproxy_application_servers=web04.example.com\\\\\\,web05.example.com\\\\\\,web06.example.com]',
    );
    const { task, args } = parseRakeTask(word);
    expect(task).toBe('nodegroup:variables');
    expect(args[0]).toBe('load balancers');
    expect(parseVariablesArg(args[1]!)).toEqual({
      haproxy_application_port: '3000',
      haproxy_application_servers: 'web04.example.com,web05.example.com,web06.example.com',
    });
  });

  it('round-trips any arguments and variable values through rake-style parsing', () => {
    const text = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s === s.trim() && !/[\0\r\n]/.test(s));
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 4 }), (args) => {
        expect(parseRakeTask(rakeTask('node:add', args)).args).toEqual(args);
      }),
    );
    const value = fc.string({ maxLength: 30 }).filter((s) => !/[\\\0\r\n]/.test(s) && s === s.trim());
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/), value, { minKeys: 1, maxKeys: 4 }),
        (vars) => {
          const { args } = parseRakeTask(rakeTask('nodegroup:variables', ['g', variablesArg(vars)]));
          expect(parseVariablesArg(args[1]!)).toEqual(vars);
        },
      ),
    );
  });

  it('refuses what rake would mangle or what could pass as something else', () => {
    expect(() => rakeArg(' padded')).toThrow(McoError);
    expect(() => rakeArg('two\nlines')).toThrow(McoError);
    expect(() => variablesArg({ 'bad-name': 'x' })).toThrow(/not a console variable name/);
    expect(() => variablesArg({ v: 'back\\slash' })).toThrow(/backslash/);
    expect(() => variablesArg({})).toThrow(McoError);
    expect(() => rakeTask('db:drop; rm', [])).toThrow(McoError);
  });

  it('parses listings tolerantly', () => {
    expect(parseVariableListing('activemq_brokers = a.example.com,b.example.com\nfoo: "bar"\n\nnoise line\n')).toEqual(
      new Map([
        ['activemq_brokers', 'a.example.com,b.example.com'],
        ['foo', 'bar'],
      ]),
    );
    expect(parseNameListing('(in /opt/puppet/share/puppet-dashboard)\npuppet_master\n\n puppet_console \n')).toEqual([
      'puppet_master',
      'puppet_console',
    ]);
  });

  it('takes the rake prefix from the layout; the debian layout has no console', () => {
    expect(rakePrefix(resolveLayout('pe3'))).toEqual([
      '/opt/puppet/bin/rake',
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
    ]);
    expect(() => rakePrefix(resolveLayout('debian'))).toThrow(/no PE console rake command/);
  });
});

describe('Pe3Console over a rake stand-in (real process, argv only)', () => {
  it('sets and lists variables with commas, adds and replaces node groups, records every call', async () => {
    const root = tempRoot();
    const state = join(root, 'rake.json');
    const con = new Pe3Console(new LocalHost({ name: 'primary' }), pe3LayoutUnder(root, state), { sudo: false });
    await con.setGroupVariables('puppet_master', { activemq_brokers: 'm1.example.com,m2.example.com' });
    expect((await con.groupVariables('puppet_master')).get('activemq_brokers')).toBe('m1.example.com,m2.example.com');
    await con.addNodeToGroups('m2.example.com', ['puppet_master', 'puppet_console']);
    expect(await con.nodeGroups('m2.example.com')).toEqual(['puppet_master', 'puppet_console']);
    await con.setNodeGroups('m2.example.com', ['puppet_console', 'no mcollective']);
    expect(await con.nodeGroups('m2.example.com')).toEqual(['puppet_console', 'no mcollective']);
    const recorded = JSON.parse(readFileSync(state, 'utf8')) as { calls: string[][] };
    expect(recorded.calls[0]).toEqual([
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
      'nodegroup:variables[puppet_master,activemq_brokers=m1.example.com\\\\\\,m2.example.com]',
    ]);
    expect(recorded.calls[2]).toEqual([
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
      'node:addgroup[m2.example.com,puppet_master]',
    ]);
    expect(recorded.calls[3]).toEqual([
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
      'node:addgroup[m2.example.com,puppet_console]',
    ]);
    expect(con.calls.map((c) => c.readOnly)).toEqual([false, true, false, false, true, false, true]);
  });

  it('the stand-in runs a task once per rake process, as rake does (the reason for one run per added group)', async () => {
    const root = tempRoot();
    const state = join(root, 'rake.json');
    const rake = [
      process.execPath,
      FAKE_RAKE,
      state,
      '-f',
      '/opt/puppet/share/puppet-dashboard/Rakefile',
      'RAILS_ENV=production',
    ];
    await new LocalHost({ name: 'primary' }).exec([
      ...rake,
      'node:addgroup[m3.example.com,puppet_master]',
      'node:addgroup[m3.example.com,puppet_console]',
    ]);
    const con = new Pe3Console(new LocalHost({ name: 'primary' }), pe3LayoutUnder(root, state), { sudo: false });
    expect(await con.nodeGroups('m3.example.com')).toEqual(['puppet_master']);
  });

  it('under DryRunHost, listings run and changes are only recorded', async () => {
    const root = tempRoot();
    const state = join(root, 'rake.json');
    const dry = new DryRunHost(new LocalHost({ name: 'primary' }));
    const con = new Pe3Console(dry, pe3LayoutUnder(root, state), { sudo: false });
    await con.setGroupVariables('mcollective', { fact_stomp_server: 'm1.example.com,m2.example.com' });
    expect((await con.groupVariables('mcollective')).get('fact_stomp_server')).toBeUndefined();
    expect(dry.mutations).toEqual([
      {
        kind: 'exec',
        host: 'primary',
        sudo: false,
        argv: expect.arrayContaining([
          'nodegroup:variables[mcollective,fact_stomp_server=m1.example.com\\\\\\,m2.example.com]',
        ]),
      },
    ]);
  });

  it('a failing rake run is an E_MCO_CONSOLE error naming the task', async () => {
    const layout = resolveLayout('pe3', { commands: { consoleCreateKeyPair: ['false', 'cert:create_key_pair'] } });
    const con = new Pe3Console(new LocalHost({ name: 'primary' }), layout, { sudo: false });
    await expect(con.nodeGroups('m2.example.com')).rejects.toMatchObject({
      code: 'E_MCO_CONSOLE',
      message: expect.stringContaining('node:listgroups'),
    });
  });

  it("list: every group's variables and every node's groups in ONE command, no run naming a task twice", async () => {
    const root = tempRoot();
    const state = join(root, 'rake.json');
    const con = new Pe3Console(new LocalHost({ name: 'primary' }), pe3LayoutUnder(root, state), { sudo: false });
    // several pairs in one nodegroup:variables task (PE 3: "add (or edit) variables"), commas inside values
    await con.change({
      variables: new Map<string, Record<string, string>>([
        ['puppet_master', { activemq_brokers: 'm1.example.com,m2.example.com', other: 'x' }],
        ['mcollective', { fact_stomp_server: 'm1.example.com' }],
      ]),
      addGroups: new Map([['m2.example.com', ['puppet_master', 'puppet_console']]]),
    });
    expect(con.calls).toHaveLength(1);
    const recorded = JSON.parse(readFileSync(state, 'utf8')) as { calls: string[][] };
    expect(recorded.calls.map((c) => c.slice(3))).toEqual([
      [
        'nodegroup:variables[puppet_master,activemq_brokers=m1.example.com\\\\\\,m2.example.com\\,other=x]',
        'node:addgroup[m2.example.com,puppet_master]',
      ],
      [
        'nodegroup:variables[mcollective,fact_stomp_server=m1.example.com]',
        'node:addgroup[m2.example.com,puppet_console]',
      ],
    ]);
    const l = await con.list({
      groups: ['puppet_master', 'mcollective'],
      nodes: ['m2.example.com', 'm3.example.com', 'm4.example.com'],
      exactNodes: ['m4.example.com'],
    });
    expect(con.calls).toHaveLength(2);
    expect(con.calls[1]!.readOnly).toBe(true);
    expect(l.variables).toEqual(
      new Map([
        [
          'puppet_master',
          new Map([
            ['activemq_brokers', 'm1.example.com,m2.example.com'],
            ['other', 'x'],
          ]),
        ],
        ['mcollective', new Map([['fact_stomp_server', 'm1.example.com']])],
      ]),
    );
    expect(l.nodeGroups.get('m2.example.com')).toEqual(['puppet_master', 'puppet_console']);
    expect(l.nodeGroups.get('m3.example.com')).toEqual([]);
    // m2 and m3 share their runs with a variables listing; m4 was asked exact: a run of its own
    expect([...l.exact]).toEqual(['m4.example.com']);
    const runs = (JSON.parse(readFileSync(state, 'utf8')) as { calls: string[][] }).calls
      .slice(2)
      .map((c) => c.slice(3));
    expect(runs).toEqual([
      ['node:listgroups[m2.example.com]', 'nodegroup:variables[puppet_master]'],
      ['node:listgroups[m3.example.com]', 'nodegroup:variables[mcollective]'],
      ['node:listgroups[m4.example.com]'],
    ]);
    // nothing to change: no command
    await con.change({});
    expect(con.calls).toHaveLength(2);
  });

  it('packs task words first fit, each task once per run; a failing run is named, with the runs before it done', async () => {
    expect(
      packRakeRuns([
        'nodegroup:variables[a,x=1]',
        'nodegroup:variables[b,y=2]',
        'node:addgroup[n,a]',
        'node:groups[m,a]',
        'node:addgroup[n,b]',
      ]),
    ).toEqual([
      ['nodegroup:variables[a,x=1]', 'node:addgroup[n,a]', 'node:groups[m,a]'],
      ['nodegroup:variables[b,y=2]', 'node:addgroup[n,b]'],
    ]);
    const root = tempRoot();
    const state = join(root, 'rake.json');
    const con = new Pe3Console(new LocalHost({ name: 'primary' }), pe3LayoutUnder(root, state), { sudo: false });
    // the fake knows no node:frobnicate: the second run fails
    const err = await (con as unknown as { runs(r: string[][], ro: boolean): Promise<string[]> })
      .runs([['node:addgroup[n,a]'], ['node:frobnicate[n]']], false)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'E_MCO_CONSOLE',
      host: 'primary',
      message: expect.stringContaining(
        'the console rake task node:frobnicate failed (rake run 2 of 2; the runs before it are done)',
      ),
    });
    expect(RAKE_RUN_MARKER).not.toMatch(/[=:]/);
  });
});
