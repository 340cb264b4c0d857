/**
 * The API a conformance run serves is the runtime's own: every RPC of
 * api.proto answers there (the cluster ones included), so a plugin that uses
 * any of them during OnActivate is checked against real behaviour.
 */
import { createApiDouble } from '../../src/conformance/api-double';
import { contract } from '../../src/protocol/contract';
import type { Manifest } from '../../src/manifest';

const manifest = { id: 'com.example.double', name: 'double', version: '1.0.0', server: { executable: 'x' } } as Manifest;

test('every API RPC of the contract is served, the cluster ones included', async () => {
  const api = createApiDouble(manifest, '0.1.0');
  const rpcs = Object.keys(contract().API.service);
  expect(rpcs).toEqual(expect.arrayContaining(['LockAcquire', 'LockRefresh', 'LockRelease', 'JobClaim', 'ClusterTime']));
  expect(rpcs.filter((name) => typeof api.registration.implementation[name] !== 'function')).toEqual([]);
  await api.close();
});

test('LockAcquire through the double grants a fencing token, and a second acquire is refused', async () => {
  const api = createApiDouble(manifest, '0.1.0');
  const call = (method: string, request: object) =>
    new Promise<Record<string, unknown>>((resolve, reject) =>
      (api.registration.implementation[method] as (c: object, cb: (e: Error | null, r?: Record<string, unknown>) => void) => void)(
        { request, metadata: undefined, getPeer: () => 'test' },
        (err, res) => (err ? reject(err) : resolve(res as Record<string, unknown>)),
      ),
    );
  expect(await call('LockAcquire', { name: 'leader', ttl_ms: '60000', wait_ms: '0' })).toMatchObject({ acquired: true, token: '1' });
  expect(await call('LockAcquire', { name: 'leader', ttl_ms: '60000', wait_ms: '0' })).toMatchObject({ acquired: false, token: '0' });
  await api.close();
});
