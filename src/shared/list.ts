/**
 * An intrusive doubly linked list: each node carries its own `previous` and `next`, so
 * adding a node allocates nothing and removing one from the middle costs O(1). Queues of
 * waiting calls and lists of pending deadlines are kept in one.
 */

/** What a node of a {@link List} carries. A node is in at most one list at a time. */
export interface ListNode<N> {
  previous: N | undefined;
  next: N | undefined;
}

export class List<N extends ListNode<N>> {
  head: N | undefined = undefined;
  tail: N | undefined = undefined;
  size = 0;

  /** Adds `node` at the tail. */
  push(node: N): void {
    node.previous = this.tail;
    node.next = undefined;
    if (this.tail === undefined) this.head = node;
    else this.tail.next = node;
    this.tail = node;
    this.size++;
  }

  /** Removes `node`; false (and nothing changed) when it is not in this list. */
  remove(node: N): boolean {
    const { previous, next } = node;
    if (previous === undefined) {
      if (this.head !== node) return false;
      this.head = next;
    } else {
      previous.next = next;
    }
    if (next === undefined) this.tail = previous;
    else next.previous = previous;
    node.previous = undefined;
    node.next = undefined;
    this.size--;
    return true;
  }
}
