/**
 * Runs the notes service on 127.0.0.1 (PORT, default 8066) with its plugins in
 * ./data-embed. Bundle paths given as arguments are installed (replacing an
 * older version) and enabled; enabled plugins come back by themselves on the
 * next start.
 */
import pino from 'pino';
import { createNotesApp } from './app';

async function main(): Promise<void> {
  const notes = await createNotesApp({ dataDir: './data-embed', logger: pino({ name: 'notes' }), adminToken: process.env.PLUGHOST_ADMIN_TOKEN });
  for (const bundle of process.argv.slice(2)) {
    const installed = await notes.host.install(bundle, { force: true });
    await notes.host.enable(installed.id);
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void notes.close());
  await notes.app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 8066) });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
