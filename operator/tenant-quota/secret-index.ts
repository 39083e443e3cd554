/**
 * Which TenantQuotas read which Secrets, kept in memory by the TenantQuota reconciler, so that a
 * Secret event re-reconciles exactly the quotas that use it without listing anything.
 */

export class SecretIndex {
  /** "namespace/secret" -> names of the TenantQuotas (same namespace) that reference it. */
  readonly #bySecret = new Map<string, Set<string>>();
  /** "namespace/quota" -> the Secret names it referenced at its last reconcile. */
  readonly #byQuota = new Map<string, string[]>();

  /** Records that TenantQuota `namespace/quota` reads `secrets` (replacing what it read before). */
  set(namespace: string, quota: string, secrets: readonly string[]): void {
    this.forget(namespace, quota);
    const unique = [...new Set(secrets)];
    this.#byQuota.set(`${namespace}/${quota}`, unique);
    for (const secret of unique) {
      const key = `${namespace}/${secret}`;
      let quotas = this.#bySecret.get(key);
      if (!quotas) this.#bySecret.set(key, (quotas = new Set()));
      quotas.add(quota);
    }
  }

  /** Forgets a TenantQuota (deleted). */
  forget(namespace: string, quota: string): void {
    for (const secret of this.#byQuota.get(`${namespace}/${quota}`) ?? []) {
      const key = `${namespace}/${secret}`;
      const quotas = this.#bySecret.get(key);
      quotas?.delete(quota);
      if (quotas?.size === 0) this.#bySecret.delete(key);
    }
    this.#byQuota.delete(`${namespace}/${quota}`);
  }

  /** Names of the TenantQuotas of `namespace` that read Secret `secret`. */
  quotasReading(namespace: string, secret: string): string[] {
    return [...(this.#bySecret.get(`${namespace}/${secret}`) ?? [])].sort();
  }
}

/** The operator's one index, shared by the reconciler and the Secret watch. */
export const tenantSecretIndex = new SecretIndex();
