// Entry point of the runtime image: `turnpike-runtime <gateway|worker|collector>` (or TURNPIKE_ROLE)
// loads that role's compiled main module from dist/. The operator's worker Deployments pass the
// role as the container's first argument.
const ROLES = ["gateway", "worker", "collector"];
const role = process.argv[2] ?? process.env.TURNPIKE_ROLE;

if (!ROLES.includes(role)) {
  console.error(
    `turnpike-runtime: unknown role ${JSON.stringify(role ?? "")}; ` +
      `pass one of ${ROLES.join(", ")} as the first argument or in TURNPIKE_ROLE`,
  );
  process.exit(64);
}
process.env.TURNPIKE_ROLE = role;
await import(`../dist/runtime/${role}/main.js`);
