import { describe, expect, it } from 'vitest';
import { internStrings } from './intern.ts';

describe('internStrings', () => {
  // Sharing is invisible to JavaScript (equal strings are equal); what a test can see is that nothing
  // changes. bench/runtime.ts shows the memory it saves.
  it('keeps every value and leaves the structure as it was', () => {
    const pod = JSON.parse(
      '{"metadata":{"name":"a","labels":{"app":"triage"}},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],"podIPs":[{"ip":"10.0.0.1"}]},"spec":{"n":3,"ok":true,"none":null}}',
    );
    const copy = structuredClone(pod);
    expect(internStrings(pod)).toBe(pod);
    expect(pod).toEqual(copy);
  });
});
