/** The go-plugin wire protocol, host and plugin sides, with no runtime policy. */
export { PluginClient, type PluginClientOptions, type ReattachConfig, type ReattachOptions, type ExitInfo } from './client';
export { servePlugin, type ServePluginOptions, type ServedPlugin, type ServeContext } from './server';
export { GrpcBroker, type BrokerConnection, type BrokerServer, type ServiceRegistration } from './broker';
export { parseHandshakeLine, formatHandshakeLine, chooseAppVersion, type HandshakeLine, type Network } from './handshake';
export { parseLogLine, type PluginLogRecord, type LogLevel, type LogSource } from './log-lines';
export { createPluginLogger, type PluginLogger } from './plugin-log';
export { loadProtos, protoRoot } from './proto';
export { DEFAULT_HANDSHAKE, type Handshake } from './constants';
