// Runs in every test worker: point kubernetes-fluent-client and kubectl at the run's control plane.
import { inject } from "vitest";
import { RUN_NAMES_ENV } from "./run-names.js";

process.env.KUBECONFIG = inject("kubeconfig");
process.env.TURNPIKE_KUBE_BIN = inject("kubeBinDir");
process.env.TURNPIKE_AUDIT_LOG = inject("auditLog");
process.env[RUN_NAMES_ENV] = inject("runNamesFile");
