/** Token and request quotas in Redis: the public surface used by the gateway, collector and operator. */
export {
  QuotaStore,
  hashApiKey,
  type QuotaStoreOptions,
  type ReserveResult,
  type TenantLimits,
  type TenantUsage,
} from "./quota-store.js";
export { QUOTA_LIMIT_NAMES, retryAfterSeconds, windowsAt, type QuotaLimitName } from "./windows.js";
