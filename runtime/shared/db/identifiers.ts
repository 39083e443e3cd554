/** SQL identifier handling for the one dynamic name Turnpike puts into SQL: the schema. */

/**
 * Lowercase letters, digits, `_` and `-`, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1). Hyphens are
 * allowed because test schemas come from uniqueName(); node-pg-migrate quotes without escaping, so
 * anything that would need escaping is refused outright rather than escaped.
 */
const SCHEMA_PATTERN = /^[a-z_][a-z0-9_-]{0,62}$/;

/** Returns `"name"` for a valid schema name; throws for anything else. */
export function quoteIdent(name: string): string {
  if (!SCHEMA_PATTERN.test(name)) {
    throw new Error(
      `invalid PostgreSQL schema name ${JSON.stringify(name)}: use [a-z0-9_-], at most 63 chars`,
    );
  }
  return `"${name}"`;
}
