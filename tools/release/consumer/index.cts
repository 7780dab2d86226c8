// The same packages through require() (Node 20.19+ loads ESM packages with require).
/* eslint-disable @typescript-eslint/no-require-imports -- require() is what this consumer proves */
import hostPkg = require('@pe-stack/pe-host');
import clusterPkg = require('@pe-stack/pe-cluster');
import configPkg = require('@pe-stack/pe-config-files');
import testingPkg = require('@pe-stack/pe-cluster/testing');

const oneCopy = new clusterPkg.UsageError('x') instanceof hostPkg.PeError;
const memory = new testingPkg.MemoryHost({ name: 'm1' }).name;
const doc = configPkg.parseIni('[main]\nserver = a\n', 'puppet.conf');
console.log(
  JSON.stringify({ module: 'cjs', oneCopy, ini: doc.toString().length, flows: clusterPkg.FLOWS.length, memory }),
);
if (!oneCopy) process.exit(1);
