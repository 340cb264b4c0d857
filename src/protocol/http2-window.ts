/**
 * The HTTP/2 flow-control window of the host's connection to a plugin. HTTP/2
 * starts every stream and connection at 64 KiB, which costs a round trip
 * between the processes per 64 KiB of body with both sides idle meanwhile;
 * grpc-js has no BDP probing to grow it (grpc-go and grpc-core do). The host
 * opens flowControlWindowBytes for what the plugin sends it
 * ('grpc-node.flow_control_window': the SETTINGS initial window and the
 * connection window, see grpc-js transport.js).
 *
 * Only that direction. Node's HTTP/2 stops reading its socket while one of its
 * own writes is pending, so when two Node peers each let the other send more
 * than a unix socket buffers (about 200 KiB), a body going each way at once
 * deadlocks the connection: both writes wait for a reader that waits for them.
 * The plugin's side keeps HTTP/2's 64 KiB (grpc-js servers offer no window
 * option anyway), so what the host writes always fits in the socket and the
 * host always goes back to reading. Go and Python peers read and write on
 * their own threads and grow their windows themselves.
 */
import type * as grpc from '@grpc/grpc-js';
import { MIN_FLOW_CONTROL_WINDOW_BYTES } from './limits';

/** Channel options that open `windowBytes` for what the plugin sends the host. */
export function channelWindowOptions(windowBytes: number): grpc.ChannelOptions {
  return windowBytes > MIN_FLOW_CONTROL_WINDOW_BYTES ? { 'grpc-node.flow_control_window': windowBytes } : {};
}
