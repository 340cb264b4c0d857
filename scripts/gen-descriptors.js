'use strict';
// Writes src/gen/descriptors.json: the protobufjs JSON form of every .proto under proto/.
// Plugins load it instead of parsing .proto text at start-up (faster spawn-to-ready).
// proto/ stays the source of truth; `npm run gen` regenerates this file from it.
const fs = require('node:fs');
const path = require('node:path');
const protobuf = require('protobufjs');

const root = path.join(__dirname, '..', 'proto');
const files = [
  'plugin/grpc_broker.proto',
  'plugin/grpc_controller.proto',
  'plugin/grpc_stdio.proto',
  'grpc/health/v1/health.proto',
  'plughost/v1/hooks.proto',
  'plughost/v1/api.proto',
];
const pb = new protobuf.Root();
pb.resolvePath = (_origin, target) => {
  const local = path.join(root, target);
  if (fs.existsSync(local)) return local;
  // google/protobuf/*.proto come with protobufjs.
  return path.join(path.dirname(require.resolve('protobufjs')), target);
};
pb.loadSync(files, { keepCase: true });
// The lowerCamel alias grpc-js gives each method (proto-loader's originalName), worked out here
// with the same function proto-loader uses, so the runtime needs neither proto-loader nor lodash.
const camelCase = require('lodash.camelcase');
const originalNames = {};
pb.resolveAll();
(function walk(ns) {
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Service) for (const m of obj.methodsArray) originalNames[`${obj.fullName.slice(1)}/${m.name}`] = camelCase(m.name);
    if (obj.nestedArray) walk(obj);
  }
})(pb);
const out = path.join(__dirname, '..', 'src', 'gen', 'descriptors.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ files, originalNames, root: pb.toJSON({ keepComments: false }) }));
process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
