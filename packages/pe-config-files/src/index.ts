export * from './errors.js';
export { type Eol, type Line, splitLines, joinLines, detectEol, detectEolText } from './text.js';
export { type EditResult, maskedEditDiff, findSecretValues } from './diff.js';
export * from './layouts.js';
export { IniDocument, parseIni, type IniOp } from './ini.js';
export {
  YamlDocument,
  parseYaml,
  renderScalar as renderYamlScalar,
  type YamlOp,
  type YamlPath,
  type YamlScalar,
} from './yaml.js';
export { LineListDocument, parseLineList, type LineListOp } from './lines.js';
export { ApacheDocument, parseApache, type ApacheOp } from './apache.js';
export {
  HoconDocument,
  parseHocon,
  type HoconOp,
  type HoconPath,
  type HoconScalar,
  type HoconValue,
  type HoconNode,
  type HoconObject,
  type HoconArray,
  type HoconField,
  type HoconScalarNode,
} from './hocon.js';
export { isCaAdminRule, type AuthRule, type AuthRuleSelection } from './auth-rules.js';
export { ServicesDocument, parseServices, CA_SERVICE, CA_DISABLED_SERVICE, type ServicesOp } from './services.js';
export { PostgresqlConfDocument, parsePostgresqlConf, type PostgresqlConfOp } from './postgresql.js';
export { PgHbaDocument, parsePgHba, type HbaRecord, type HbaMatch, type PgHbaOp } from './pghba.js';
export { KeyValueDocument, parseKeyValue, setJavaOption, type KvOp, type KvStyle } from './kv.js';
export { SitePpDocument, parseSitePp, type SitePpOp } from './sitepp.js';
export {
  ActiveMqDocument,
  parseActiveMq,
  type ActiveMqOp,
  type ConnectorKind,
  type ConnectorAttrs,
} from './activemq.js';
export { HostsDocument, parseHosts, type HostsOp } from './hosts.js';
export {
  type Edit,
  type EditKindName,
  type ApplyResult,
  type ConfigDocument,
  editText,
  applyEdits,
  openDocument,
} from './edits.js';
