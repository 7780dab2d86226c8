import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { isCaAdminRule, type AuthRule } from './auth-rules.js';
import { parseHocon } from './hocon.js';
import { lineChanges } from '@pe-stack/testkit/config-samples';

const AUTH = '/etc/puppet/puppetserver/conf.d/auth.conf';
const debianAuth = existsSync(AUTH) ? readFileSync(AUTH, 'utf8') : undefined;

describe('auth.conf rules', () => {
  it('auth.conf: allows a certname on exactly the rules that require pp_cli_auth', () => {
    const text =
      debianAuth ??
      'authorization: {\n    version: 1\n    rules: [\n        {\n            match-request: { path: "/puppet-ca/v1/certificate_status", type: path }\n            allow: {\n               extensions: {\n                   pp_cli_auth: "true"\n               }\n            }\n            sort-order: 500\n            name: "puppetlabs cert status"\n        },\n        {\n            match-request: { path: "/", type: path }\n            deny: "*"\n            sort-order: 999\n            name: "puppetlabs deny all"\n        }\n    ]\n}\n';
    const doc = parseHocon(text, AUTH);
    const rules = doc.get(['authorization', 'rules']) as Record<string, unknown>[];
    const admin = rules.filter(isCaAdminRule).map((r) => r['name']);
    expect(admin.length).toBeGreaterThanOrEqual(1);
    expect(doc.authAllow('secondary1.example.com')).toBe(true);
    expect(doc.authAllow('secondary1.example.com')).toBe(false);
    const after = parseHocon(doc.toString(), AUTH);
    for (const r of after.get(['authorization', 'rules']) as Record<string, unknown>[]) {
      const allow = r['allow'];
      const has = Array.isArray(allow) && allow.includes('secondary1.example.com');
      expect(has, String(r['name'])).toBe(admin.includes(r['name']));
      if (has) expect((allow as unknown[])[0]).toEqual({ extensions: { pp_cli_auth: 'true' } });
    }
    // only lines of the admin rules' allow values changed
    const { removed } = lineChanges(text, doc.toString());
    expect(removed.every((l) => /allow: \{|^\s*\}\n$/.test(l))).toBe(true);
  });

  it('auth.conf: a named rule goes first, is replaced when it differs, and is removed without a trace', () => {
    const text =
      debianAuth ??
      'authorization: {\n    version: 1\n    rules: [\n        {\n            match-request: { path: "/", type: path }\n            deny: "*"\n            sort-order: 999\n            name: "puppetlabs deny all"\n        }\n    ]\n}\n';
    const rule: AuthRule = {
      name: 'pe-cluster CA gate',
      match: { path: '^/puppet-ca/v1/(?!certificate/|certificate_revocation_list/)', type: 'regex' },
      deny: '*',
      sortOrder: 1,
    };
    const doc = parseHocon(text, AUTH);
    const n = (doc.get(['authorization', 'rules']) as unknown[]).length;
    expect(doc.authRule(rule)).toBe(true);
    expect(doc.authRule(rule)).toBe(false);
    const rules = parseHocon(doc.toString(), AUTH).get(['authorization', 'rules']) as Record<string, unknown>[];
    expect(rules).toHaveLength(n + 1);
    expect(rules[0]).toEqual({
      'match-request': { path: rule.match.path, type: 'regex' },
      deny: '*',
      'sort-order': 1,
      name: 'pe-cluster CA gate',
    });
    expect(doc.authRule({ ...rule, sortOrder: 2 })).toBe(true);
    expect((doc.get(['authorization', 'rules']) as unknown[]).length).toBe(n + 1);
    expect(doc.get(['authorization', 'rules', 0, 'sort-order'])).toBe(2);
    expect(doc.authRuleRemove('pe-cluster CA gate')).toBe(true);
    expect(doc.authRuleRemove('pe-cluster CA gate')).toBe(false);
    expect(doc.toString()).toBe(text);
    // a rule that is the last one, and an empty list
    const one = parseHocon('authorization: {\n    rules: [\n    ]\n}\n', AUTH);
    expect(one.authRule(rule)).toBe(true);
    expect(one.get(['authorization', 'rules', 0, 'name'])).toBe(rule.name);
    expect(one.authRuleRemove(rule.name)).toBe(true);
    expect(one.get(['authorization', 'rules'])).toEqual([]);
    expect(() => parseHocon('a: 1\n', AUTH).authRule(rule)).toThrow(/no authorization.rules/);
  });

  it('auth.conf: by rule name, for rules whose allow is a plain string', () => {
    const doc = parseHocon(
      'authorization: { rules: [ { name: "r1", allow: "*" }, { name: "r2", allow: "$1" } ] }\n',
      AUTH,
    );
    expect(doc.authAllow('m2', ['r2'])).toBe(true);
    expect(doc.get(['authorization', 'rules', 1, 'allow'])).toEqual(['$1', 'm2']);
    expect(doc.get(['authorization', 'rules', 0, 'allow'])).toBe('*');
  });
});
