/** Response schemas serialize: what they must keep, a real server keeps. */
import Fastify from 'fastify';
import { Type } from '@sinclair/typebox';
import { InstalledSchema, responses } from '../../src/server/schemas';

test('the install answer keeps a warnings list', async () => {
  const app = Fastify();
  const info = { warnings: ['setting "old" was dropped: the new schema has no such setting'] };
  app.post('/x', { schema: { response: responses({ 201: Type.Partial(InstalledSchema) }) } }, async (_request, reply) => reply.status(201).send(info));
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/x`, { method: 'POST' });
    expect(await res.json()).toEqual(info);
  } finally {
    await app.close();
  }
});
