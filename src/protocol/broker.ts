/**
 * go-plugin's connection broker. Over one StartStream stream, each side says
 * "service N is listening at ADDRESS"; the other side dials N by waiting for
 * that announcement. Each side numbers its own ids from 1. Used the same way
 * on the host and on the plugin side, and over AutoMTLS when the main
 * connection uses it.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import type { ConnInfo, ConnInfo__Output } from '../gen/plugin/ConnInfo';
import { DEFAULT_BROKER_DIAL_TIMEOUT_MS } from './constants';
import { DEFAULT_MAX_MESSAGE_BYTES, messageSizeOptions } from './limits';
import { bindServer, dialTarget, removeSocketFile, shutdownServer, type BoundAddress, type ListenSpec } from './listen';
import { channelCredentials, channelOptions, serverCredentials, type MutualTls } from './mtls';

/** The StartStream call as either side holds it: grpc-js's client or server duplex stream. */
export interface BrokerStream {
  write(info: ConnInfo): unknown;
  end(): unknown;
  on(event: 'data', listener: (info: ConnInfo__Output) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  cancel?: () => void;
  destroyed?: boolean;
}

/** A service and its handlers, as grpc-js `Server.addService` takes them. */
export interface ServiceRegistration {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** A connection to a service the other side serves on the broker. */
export interface BrokerConnection {
  readonly channel: grpc.Channel;
  /** A client of any service over this connection, e.g. `conn.client(MyService)`. */
  client<T extends grpc.Client>(ctor: new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ClientOptions) => T): T;
  close(): void;
}

/** A server this side opened with acceptAndServe. */
export interface BrokerServer {
  readonly id: number;
  readonly address: BoundAddress;
  close(): Promise<void>;
}

export interface BrokerOptions {
  tls: MutualTls | null;
  /** Where acceptAndServe listens. */
  listen: ListenSpec;
  /** Prefix of socket file names, distinct per side: both sides may share a folder. */
  socketPrefix: string;
  dialTimeoutMs?: number;
  /** The gRPC message size limit of every broker server and connection; the main connection's. Default 64 MiB. */
  maxMessageBytes?: number;
}

/** Announcements not yet dialed are kept this long, then dropped. */
const ANNOUNCEMENT_RETENTION_MS = 60_000;
const BROKER_SERVER_GRACE_MS = 1_000;

interface Waiter {
  resolve(info: ConnInfo__Output): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class GrpcBroker {
  private stream: BrokerStream | undefined;
  private lastId = 0;
  private readonly outbox: ConnInfo[] = [];
  private readonly announced = new Map<number, { info: ConnInfo__Output; timer: NodeJS.Timeout }>();
  private readonly waiters = new Map<number, Waiter[]>();
  private readonly servers = new Set<BrokerServer>();
  private readonly connections = new Set<BrokerConnection>();
  private closedBecause: string | undefined;

  constructor(private readonly options: BrokerOptions) {}

  /** Binds the StartStream stream: the host's client call, or the plugin's server call. */
  attach(stream: BrokerStream): void {
    this.stream = stream;
    stream.on('data', (info: ConnInfo__Output) => this.receive(info));
    stream.on('error', (err: Error) => this.streamEnded(err.message));
    stream.on('end', () => this.streamEnded('the peer ended the broker stream'));
    for (const info of this.outbox.splice(0)) stream.write(info);
  }

  /** A fresh id for acceptAndServe. */
  nextId(): number {
    return ++this.lastId;
  }

  /** Listens on a new socket, serves `services` there, and announces it to the peer as `id`. */
  async acceptAndServe(id: number, services: ServiceRegistration[]): Promise<BrokerServer> {
    this.assertOpen();
    const server = new grpc.Server(this.sizeOptions());
    for (const s of services) server.addService(s.definition, s.implementation);
    const address = await bindServer(server, serverCredentials(this.options.tls), this.options.listen, `${this.options.socketPrefix}${id}`);
    const handle: BrokerServer = {
      id,
      address,
      close: async () => {
        if (!this.servers.delete(handle)) return;
        await shutdownServer(server, BROKER_SERVER_GRACE_MS);
        removeSocketFile(address);
      },
    };
    this.servers.add(handle);
    this.send({ service_id: id, network: address.network, address: address.address });
    return handle;
  }

  /** Waits (5 s by default) for the peer to announce `id`, then connects to it. */
  async dial(id: number, timeoutMs = this.options.dialTimeoutMs ?? DEFAULT_BROKER_DIAL_TIMEOUT_MS): Promise<BrokerConnection> {
    const info = await this.waitFor(id, timeoutMs);
    if (info.network !== 'unix' && info.network !== 'tcp') throw Errors.BROKER_BAD_CONN_INFO(id, info.network, info.address);
    const tls = this.options.tls;
    const creds = channelCredentials(tls);
    const channel = new grpc.Channel(dialTarget(info.network, info.address), creds, { ...channelOptions(tls), ...this.sizeOptions() });
    const conn: BrokerConnection = {
      channel,
      client: (ctor) => new ctor('broker', creds, { channelOverride: channel }),
      close: () => {
        if (this.connections.delete(conn)) channel.close();
      },
    };
    this.connections.add(conn);
    return conn;
  }

  /** Closes every broker server and connection, and ends the stream. */
  async close(reason = 'broker closed'): Promise<void> {
    if (this.closedBecause === undefined) this.closedBecause = reason;
    this.failWaiters();
    for (const { timer } of this.announced.values()) clearTimeout(timer);
    this.announced.clear();
    for (const conn of [...this.connections]) conn.close();
    await Promise.all([...this.servers].map((s) => s.close()));
    const stream = this.stream;
    this.stream = undefined;
    if (stream && !stream.destroyed) {
      if (typeof stream.cancel === 'function') stream.cancel();
      else stream.end();
    }
  }

  private sizeOptions(): grpc.ChannelOptions {
    return messageSizeOptions(this.options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES);
  }

  private send(info: ConnInfo): void {
    if (this.stream) this.stream.write(info);
    else this.outbox.push(info);
  }

  private receive(info: ConnInfo__Output): void {
    if (info.knock?.knock) {
      // Knocks belong to gRPC multiplexing, which plughost never enables.
      this.send({ service_id: info.service_id, knock: { knock: false, ack: false, error: 'plughost does not multiplex gRPC' } });
      return;
    }
    const waiting = this.waiters.get(info.service_id);
    if (waiting?.length) {
      const waiter = waiting.shift()!;
      if (!waiting.length) this.waiters.delete(info.service_id);
      clearTimeout(waiter.timer);
      waiter.resolve(info);
      return;
    }
    const previous = this.announced.get(info.service_id);
    if (previous) clearTimeout(previous.timer);
    const timer = setTimeout(() => this.announced.delete(info.service_id), ANNOUNCEMENT_RETENTION_MS);
    timer.unref();
    this.announced.set(info.service_id, { info, timer });
  }

  private waitFor(id: number, timeoutMs: number): Promise<ConnInfo__Output> {
    this.assertOpen();
    const ready = this.announced.get(id);
    if (ready) {
      clearTimeout(ready.timer);
      this.announced.delete(id);
      return Promise.resolve(ready.info);
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(id) ?? [];
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const current = this.waiters.get(id);
          if (current) {
            current.splice(current.indexOf(waiter), 1);
            if (!current.length) this.waiters.delete(id);
          }
          reject(Errors.BROKER_DIAL_TIMEOUT(id, timeoutMs));
        }, timeoutMs),
      };
      list.push(waiter);
      this.waiters.set(id, list);
    });
  }

  private streamEnded(reason: string): void {
    if (this.closedBecause === undefined) this.closedBecause = reason;
    this.failWaiters();
  }

  private failWaiters(): void {
    for (const list of this.waiters.values()) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(Errors.BROKER_CLOSED(this.closedBecause ?? 'closed'));
      }
    }
    this.waiters.clear();
  }

  private assertOpen(): void {
    if (this.closedBecause !== undefined) throw Errors.BROKER_CLOSED(this.closedBecause);
  }
}

