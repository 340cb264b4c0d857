/**
 * The hello plugin's client bundle: an ES module that plughost/webapp loads
 * into the integrator's pages. It fills every `greeting` slot with the
 * plugin's configured greeting, read from its own route GET /hello.
 */
export default function activate(registry) {
  registry.registerSlot('greeting', (el) => {
    const line = document.createElement('p');
    line.className = 'hello-greeting';
    line.textContent = 'Hello from the hello plugin';
    el.append(line);
    // The request is cancelled if the plugin is unloaded before it answers.
    const request = new AbortController();
    fetch(`${registry.pluginUrl}/hello`, { signal: request.signal })
      .then((res) => (res.ok ? res.json() : null))
      .then((body) => {
        if (body && typeof body.greeting === 'string') line.textContent = `${body.greeting} from the hello plugin (visit ${body.visits})`;
      })
      .catch(() => undefined);
    return () => request.abort();
  });
}
