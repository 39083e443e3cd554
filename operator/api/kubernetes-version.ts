/**
 * The oldest Kubernetes the CRDs install on. Pipeline validation uses CEL two-variable
 * comprehensions (`self.all(i, s, ...)`): the apiserver's CEL environment gained them in 1.32, but
 * an apiserver compiles new or changed rules only with the libraries of its previous minor (so a
 * rollback can still read them), which makes 1.33 the first that accepts these CRDs.
 * test/api/kubernetes-version.test.ts proves it with kube-apiserver emulating this version and the
 * one before, and checks that the README, the chart and docs/api.md say the same.
 */
export const MIN_KUBERNETES_VERSION = "1.33";
