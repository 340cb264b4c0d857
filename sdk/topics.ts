/** Event topic patterns as ImplementedResponse.event_topics defines them: exact, "prefix*", or "*". */

export function matchesTopic(pattern: string, topic: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return topic.startsWith(pattern.slice(0, -1));
  return pattern === topic;
}
