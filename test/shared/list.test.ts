/**
 * The intrusive list behind every queue of waiting calls and every list of pending deadlines:
 * removing a node it does not hold must leave it alone (a deadline of an injected clock is
 * never linked, and a queue entry is removed once, whoever gets there first).
 */
import { describe, expect, it } from 'vitest';
import { List } from '../../src/shared/list.js';

interface Node {
  readonly id: string;
  previous: Node | undefined;
  next: Node | undefined;
}

const node = (id: string): Node => ({ id, previous: undefined, next: undefined });
const ids = (list: List<Node>): string[] => {
  const found: string[] = [];
  for (let at = list.head; at !== undefined; at = at.next) found.push(at.id);
  return found;
};

describe('List', () => {
  it('says true when it removes a node, and false (changing nothing) for a node it does not hold', () => {
    const list = new List<Node>();
    const [a, b, stranger] = [node('a'), node('b'), node('stranger')];
    list.push(a);
    list.push(b);
    expect(list.remove(stranger)).toBe(false);
    expect([ids(list), list.size, list.tail?.id]).toEqual([['a', 'b'], 2, 'b']);
    expect(list.remove(a)).toBe(true);
    expect(list.remove(a)).toBe(false); // removed once, whoever gets there first
    expect([ids(list), list.size, list.head?.id]).toEqual([['b'], 1, 'b']);
  });
});
