import { describe, expect, it } from 'vitest';
import { InventoryError, parseInventory, type Inventory } from './index.js';

/**
 * One test per rule of Bolt's group and target resolution
 * (puppetlabs/bolt lib/bolt/inventory/group.rb, inventory.rb, target.rb;
 * docs "Inventory file v2"), as pe-cluster reads it.
 */

const HOME = '/home/operator';
const VARS = `vars: {cluster: c, layout: debian, primary_cname: ca.example.com, general_cname: p.example.com}\n`;

function load(body: string): Inventory {
  return parseInventory(VARS + body, '/x/inventory.yaml', { env: {}, home: HOME });
}

function refuse(body: string): InventoryError {
  try {
    load(body);
  } catch (e) {
    expect(e).toBeInstanceOf(InventoryError);
    return e as InventoryError;
  }
  throw new Error('accepted');
}

const roles = (inv: Inventory) => [...inv.masters, ...inv.agents].map((n) => `${n.name}=${n.role}`).sort();

describe('Bolt names (NAME_REGEX [a-z0-9_][a-z0-9_-]*)', () => {
  it('group names may hold hyphens (k8s-primary), not upper case or a leading hyphen', () => {
    const inv = load(`groups:
  - name: k8s-primary
    targets:
      - {uri: m1.example.com, vars: {role: primary}}
`);
    expect(inv.primary.name).toBe('m1.example.com');
    expect(refuse(`groups:\n  - name: K8s\n    targets: [m1.example.com]\n`).first.key).toBe('groups[0].name');
    expect(refuse(`groups:\n  - name: -x\n    targets: [m1.example.com]\n`).first.key).toBe('groups[0].name');
  });

  it('aliases follow the same rule', () => {
    load(`targets:\n  - {uri: m1.example.com, alias: [ca-1, ca_2], vars: {role: primary}}\n`);
    const e = refuse(`targets:\n  - {uri: m1.example.com, alias: [ok, Bad], vars: {role: primary}}\n`);
    expect(e.first).toMatchObject({ key: 'targets[0].alias[1]', message: expect.stringMatching(/not a Bolt alias/) });
  });
});

describe('Bolt namespace: groups, targets and aliases', () => {
  it('a group defined twice is refused', () => {
    const e = refuse(`groups:
  - {name: a, targets: [{uri: m1.example.com, vars: {role: primary}}]}
  - {name: a, targets: []}
`);
    expect(e.first).toMatchObject({ key: 'groups[1].name', message: expect.stringMatching(/defined twice/) });
  });

  it('a group named all clashes with the implicit top-level group', () => {
    expect(refuse(`groups:\n  - {name: all, targets: []}\n`).first.key).toBe('groups[0].name');
  });

  it('a group and a target of the same name are refused', () => {
    const e = refuse(`targets:
  - {name: web, uri: m1.example.com, vars: {role: primary}}
groups:
  - {name: web, targets: []}
`);
    expect(e.first.message).toMatch(/group web has the name of a target/);
  });

  it('a group and an alias of the same name are refused', () => {
    const e = refuse(`targets:
  - {uri: m1.example.com, alias: db, vars: {role: primary}}
groups:
  - {name: db, targets: []}
`);
    expect(e.first.message).toMatch(/group db has the name of an alias/);
  });

  it('an alias with the name of a target is refused', () => {
    const e = refuse(`targets:
  - {name: one, uri: m1.example.com, vars: {role: primary}}
  - {uri: m2.example.com, alias: one}
`);
    expect(e.first.message).toMatch(/alias one is also a target name/);
  });

  it('an alias of two targets is refused', () => {
    const e = refuse(`targets:
  - {uri: m1.example.com, alias: x, vars: {role: primary}}
  - {uri: m2.example.com, alias: x}
`);
    expect(e.first.message).toMatch(/alias x refers to two targets: m1.example.com and m2.example.com/);
  });
});

describe('Bolt members: strings, names, aliases', () => {
  it('a string naming a target defined elsewhere is that target (its data plus this group’s)', () => {
    const inv = load(`groups:
  - name: defs
    targets: [{name: m1.example.com, uri: 10.0.0.1}]
  - name: masters
    vars: {role: primary}
    targets: [m1.example.com]
`);
    expect(inv.primary.ssh).toMatchObject({ name: 'm1.example.com', address: '10.0.0.1' });
  });

  it('a string naming an alias is the aliased target', () => {
    const inv = load(`groups:
  - name: defs
    targets: [{name: m1.example.com, uri: 10.0.0.1, alias: ca}]
  - name: masters
    vars: {role: primary}
    targets: [ca]
`);
    expect(inv.primary.ssh).toMatchObject({ name: 'm1.example.com', address: '10.0.0.1' });
    expect(inv.masters).toHaveLength(1);
  });

  it('a string that is no name nor alias is a new target with that uri', () => {
    const inv = load(`groups:
  - name: masters
    vars: {role: primary}
    targets: ['ssh://ops@m9.example.com:2201']
config: {ssh: {run-as: root}}
`);
    expect(inv.primary.ssh).toMatchObject({ name: 'm9.example.com', user: 'ops', port: 2201 });
  });

  it('a target defined twice in one group: the first definition counts, the second is reported', () => {
    const inv = load(`targets:
  - {name: m1.example.com, uri: 10.0.0.1, vars: {role: primary}}
  - {name: m1.example.com, uri: 10.0.0.2, vars: {role: agent}}
`);
    expect(inv.primary.ssh.address).toBe('10.0.0.1');
    expect(inv.warnings.map((w) => w.message)).toContainEqual(expect.stringMatching(/defined twice in one group/));
  });

  it('a target defined in two groups with two uris is refused (Bolt would pick one silently)', () => {
    const e = refuse(`groups:
  - {name: a, targets: [{name: m1.example.com, uri: 10.0.0.1, vars: {role: primary}}]}
  - {name: b, targets: [{name: m1.example.com, uri: 10.0.0.2}]}
`);
    expect(e.first).toMatchObject({ key: 'groups[1].targets[0].uri', message: expect.stringMatching(/two uris/) });
  });

  it('a target defined in two groups with one uri merges both definitions, the earlier group winning', () => {
    const inv = load(`groups:
  - {name: a, targets: [{name: m1.example.com, uri: 10.0.0.1, vars: {role: primary}, config: {ssh: {port: 2201}}}]}
  - {name: b, targets: [{name: m1.example.com, vars: {role: agent}, config: {ssh: {port: 2202, connect-timeout: 5}}}]}
`);
    expect(inv.primary.ssh).toMatchObject({ port: 2201, connectTimeoutMs: 5000 });
  });
});

describe('Bolt data: vars and config of every enclosing group', () => {
  it('top-level vars apply to every target, role included', () => {
    const inv = parseInventory(
      `${VARS.replace('vars: {', 'vars: {role: agent, ')}groups:
  - name: masters
    targets: [{uri: m1.example.com, vars: {role: primary}}]
  - name: nodes
    targets: [a1.example.com, a2.example.com]
`,
      '/x/inventory.yaml',
      { env: {}, home: HOME },
    );
    expect(roles(inv)).toEqual(['a1.example.com=agent', 'a2.example.com=agent', 'm1.example.com=primary']);
  });

  it('an outer group’s vars apply to the targets of its inner groups; the inner group wins', () => {
    const inv = load(`groups:
  - name: puppet
    vars: {role: secondary}
    groups:
      - name: ca
        vars: {role: primary}
        targets: [m1.example.com]
      - name: compilers
        targets: [m2.example.com]
`);
    expect(roles(inv)).toEqual(['m1.example.com=primary', 'm2.example.com=secondary']);
  });

  it('of two sibling groups holding a target, the earlier one wins', () => {
    const inv = load(`groups:
  - {name: first, vars: {role: primary}, targets: [m1.example.com]}
  - {name: second, vars: {role: agent}, targets: [m1.example.com]}
`);
    expect(roles(inv)).toEqual(['m1.example.com=primary']);
  });

  it('a child group wins over its parent even when the parent lists the target itself', () => {
    const inv = load(`groups:
  - name: parent
    vars: {role: agent}
    targets: [m1.example.com]
    groups:
      - {name: child, vars: {role: primary}, targets: [m1.example.com]}
`);
    expect(roles(inv)).toEqual(['m1.example.com=primary']);
  });

  it('the target’s own vars win over every group’s', () => {
    const inv = load(`groups:
  - name: g
    vars: {role: agent}
    targets: [{uri: m1.example.com, vars: {role: primary}}]
`);
    expect(roles(inv)).toEqual(['m1.example.com=primary']);
  });

  it('a group’s data applies only to the targets beneath it', () => {
    const inv = load(`groups:
  - {name: masters, vars: {role: primary}, targets: [m1.example.com]}
  - {name: others, config: {ssh: {port: 2222}}, targets: [web.example.com]}
`);
    expect(inv.primary.ssh.port).toBeUndefined();
    expect(inv.warnings.map((w) => w.message)).toContainEqual(
      expect.stringMatching(/web.example.com has no vars.role/),
    );
  });

  it('config is deep-merged: ssh keys from the top level, the group and the target add up', () => {
    const inv = load(`config: {ssh: {user: ops, run-as: root}}
groups:
  - name: g
    config: {ssh: {port: 2200}}
    targets: [{uri: m1.example.com, vars: {role: primary}, config: {ssh: {connect-timeout: 4}}}]
`);
    expect(inv.primary.ssh).toMatchObject({ user: 'ops', port: 2200, connectTimeoutMs: 4000 });
    expect(inv.primary.sudo).toBe(true);
  });

  it('the uri’s user and port win over config (Bolt: uri parts cannot be overridden)', () => {
    const inv = load(`config: {ssh: {user: root, port: 2200, run-as: root}}
targets: [{uri: 'ssh://ops@m1.example.com:2222', vars: {role: primary}}]
`);
    expect(inv.primary.ssh).toMatchObject({ user: 'ops', port: 2222 });
  });
});

describe('Bolt transports', () => {
  it('a group with transport local and no cluster target does not fail the inventory', () => {
    const inv = load(`groups:
  - name: masters
    targets: [{uri: m1.example.com, vars: {role: primary}}]
  - name: controller
    config: {transport: local, local: {bundled-ruby: true}}
    targets: [localhost]
  - name: windows
    config: {transport: winrm, winrm: {user: Administrator}}
    targets: [win1.example.com, 'winrm://win2.example.com']
`);
    expect(inv.masters.map((m) => m.name)).toEqual(['m1.example.com']);
  });

  it('a cluster target whose transport is not ssh is refused at the key that sets it', () => {
    const e = refuse(`config: {transport: winrm}
targets: [{uri: m1.example.com, vars: {role: primary}}]
`);
    expect(e.first).toMatchObject({ key: 'config.transport', message: expect.stringMatching(/transport winrm/) });
    const u = refuse(`targets: [{uri: 'docker://m1', vars: {role: primary}}]\n`);
    expect(u.first).toMatchObject({ key: 'targets[0].uri', message: expect.stringMatching(/transport docker/) });
  });

  it('the target’s own transport wins over its group’s', () => {
    const inv = load(`groups:
  - name: local
    config: {transport: local}
    targets: [{uri: m1.example.com, vars: {role: primary}, config: {transport: ssh}}]
`);
    expect(inv.primary.name).toBe('m1.example.com');
  });
});

describe('Bolt plugins (pe-cluster runs none)', () => {
  it('a _plugin in a target uri or config.ssh.user names the key and the plugin', () => {
    const e = refuse(`targets:
  - uri: {_plugin: terraform, resource_type: aws_instance}
    vars: {role: primary}
`);
    expect(e.first).toMatchObject({ key: 'targets[0].uri', message: expect.stringContaining('_plugin: "terraform"') });
    const u = refuse(`config: {ssh: {user: {_plugin: yaml, filepath: u.yaml}}}
targets: [{uri: m1.example.com, vars: {role: primary}}]
`);
    expect(u.first).toMatchObject({ key: 'config.ssh.user', message: expect.stringContaining('_plugin: "yaml"') });
  });

  it('plugins where pe-cluster reads nothing (facts, other vars, other transports) are left alone', () => {
    const inv = load(`groups:
  - name: masters
    facts: {_plugin: puppetdb}
    vars: {role: primary, db_password: {_plugin: vault, path: x}}
    config: {winrm: {password: {_plugin: prompt, message: pw}}}
    targets: [m1.example.com]
`);
    expect(inv.primary.name).toBe('m1.example.com');
  });

  it('env_var in a secret is resolved', () => {
    const inv = parseInventory(
      `${VARS}config: {ssh: {user: ops, run-as: root, sudo-password: {_plugin: env_var, var: PW}}}
targets: [{uri: m1.example.com, vars: {role: primary}}]
`,
      '/x/inventory.yaml',
      { env: { PW: 'pw-from-env' }, home: HOME },
    );
    expect(inv.primary.ssh.sudoPassword).toBe('pw-from-env');
  });
});
