// Runs in every test worker: point kubernetes-fluent-client and kubectl at the run's control plane.
import { inject } from "vitest";

process.env.KUBECONFIG = inject("kubeconfig");
process.env.TURNPIKE_KUBE_BIN = inject("kubeBinDir");
process.env.TURNPIKE_AUDIT_LOG = inject("auditLog");
