/** plughost/sdk: what plugin authors import. Never imports the host runtime. */
export { servePlugin, type ServePluginOptions, type ServedPlugin, type ServeContext } from '../src/protocol/server';
export { createPluginLogger, type PluginLogger } from '../src/protocol/plugin-log';
export { loadProtos } from '../src/protocol/proto';
export type { ServiceRegistration, BrokerConnection, BrokerServer, GrpcBroker } from '../src/protocol/broker';
