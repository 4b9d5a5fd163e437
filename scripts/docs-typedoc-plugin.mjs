// A TypeDoc plugin for bulwark's reference (loaded by typedoc.json).
//
// Event payloads and small structural types are written inline, one line each:
//   retry: { readonly error: unknown; readonly attempt: number; readonly delay: number };
// with one comment on the member that names every field in backticks ("Attempt `attempt`
// failed with `error`; the next one starts after `delay` ms."). TypeDoc's `notDocumented`
// check wants a comment on each field of such an inline type. Here a field counts as
// documented when the comment of the member that holds the inline type names it in
// backticks, and only then: a field the comment does not name is still reported.
import { Converter, ReflectionKind } from 'typedoc';

/** The text of a comment, summary and block tags together. */
function textOf(comment) {
  if (!comment) return '';
  const parts = [...comment.summary, ...comment.blockTags.flatMap((tag) => tag.content)];
  return parts.map((part) => part.text).join('');
}

/** The nearest ancestor of `reflection` that is not an inline type, a signature or a parameter. */
function ownerOf(reflection) {
  let owner = reflection.parent;
  while (owner && owner.kindOf(ReflectionKind.TypeLiteral | ReflectionKind.SomeSignature | ReflectionKind.Parameter)) {
    // A call signature in an inline type may carry the comment itself.
    if (owner.kindOf(ReflectionKind.SomeSignature) && owner.hasComment()) return owner;
    owner = owner.parent;
  }
  return owner;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    const named = [];
    for (const field of context.project.getReflectionsByKind(ReflectionKind.Property | ReflectionKind.Method)) {
      // Only the fields of an inline type (`__type`, in TypeDoc's names) that have no comment.
      if (field.hasComment() || !field.parent?.kindOf(ReflectionKind.TypeLiteral)) continue;
      const signatures = field.signatures ?? [];
      if (signatures.some((signature) => signature.hasComment())) continue;
      const owner = ownerOf(field.parent);
      if (!owner || !textOf(owner.comment).includes(`\`${field.name}\``)) continue;
      named.push(field.getFriendlyFullName(), ...signatures.map((signature) => signature.getFriendlyFullName()));
    }
    const given = app.options.getValue('intentionallyNotDocumented');
    app.options.setValue('intentionallyNotDocumented', [...new Set([...given, ...named])]);
  });
}
