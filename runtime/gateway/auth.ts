/**
 * Who is calling: an API key (Authorization: Bearer <key> or X-API-Key), resolved by its SHA-256
 * in Redis, or, when configured, a JWT verified with jose whose claim names the tenant. Then what
 * that tenant may call, from the runtime config's allow-list.
 */
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";
import type { QuotaStore } from "../shared/quota/index.js";
import type { RuntimeConfig, TenantConfig } from "../shared/contracts/index.js";
import { ApiKeyCache } from "./api-key-cache.js";
import type { GatewayEnv } from "./config.js";
import { ApiError } from "./errors.js";

const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/;
const CHALLENGE = { "www-authenticate": 'Bearer realm="turnpike"' };

/** Resolves request credentials to a tenant. */
export class Authenticator {
  private readonly jwtKey?: Uint8Array | JWTVerifyGetKey;
  private readonly jwtAlgorithms?: string[];
  private readonly keys: ApiKeyCache;

  constructor(
    private readonly quota: QuotaStore,
    private readonly env: GatewayEnv,
  ) {
    this.keys = new ApiKeyCache(env.TURNPIKE_API_KEY_CACHE_MS);
    if (env.TURNPIKE_JWT_SECRET) {
      this.jwtKey = new TextEncoder().encode(env.TURNPIKE_JWT_SECRET);
      this.jwtAlgorithms = ["HS256"];
    } else if (env.TURNPIKE_JWT_JWKS_URL) {
      this.jwtKey = createRemoteJWKSet(new URL(env.TURNPIKE_JWT_JWKS_URL));
    }
  }

  /** The tenant of a request, from its headers; throws a 401 ApiError when it has none. */
  async tenantOf(headers: Record<string, string | string[] | undefined>): Promise<string> {
    const credential = credentialOf(headers);
    if (!credential) {
      throw new ApiError(
        "unauthenticated",
        "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        CHALLENGE,
      );
    }
    if (this.jwtKey && JWT_SHAPE.test(credential)) return this.tenantOfJwt(credential);
    let tenant = this.keys.get(credential);
    if (tenant !== undefined) return tenant;
    // Only the key's SHA-256 is looked up, so no secret is ever compared byte by byte.
    try {
      tenant = await this.quota.tenantForApiKey(credential);
    } catch (cause) {
      throw new ApiError(
        "service_unavailable",
        "cannot check API keys right now; retry",
        { "retry-after": 2 },
        { cause },
      );
    }
    if (!tenant) throw new ApiError("invalid_api_key", "the API key is not valid", CHALLENGE);
    this.keys.set(credential, tenant);
    return tenant;
  }

  /** The tenant of an API key this gateway resolved within TURNPIKE_API_KEY_CACHE_MS, without I/O. */
  knownTenantOf(headers: Record<string, string | string[] | undefined>): string | undefined {
    const credential = credentialOf(headers);
    if (!credential || (this.jwtKey && JWT_SHAPE.test(credential))) return undefined;
    return this.keys.get(credential);
  }

  private async tenantOfJwt(token: string): Promise<string> {
    let claims: Record<string, unknown>;
    try {
      const verified = await jwtVerify(token, this.jwtKey as Uint8Array, {
        issuer: this.env.TURNPIKE_JWT_ISSUER,
        audience: this.env.TURNPIKE_JWT_AUDIENCE,
        algorithms: this.jwtAlgorithms,
      });
      claims = verified.payload;
    } catch (cause) {
      throw new ApiError(
        "invalid_token",
        `the bearer token is not valid: ${(cause as Error).message}`,
        CHALLENGE,
        {
          cause,
        },
      );
    }
    const tenant = claims[this.env.TURNPIKE_JWT_TENANT_CLAIM];
    if (typeof tenant !== "string" || tenant === "") {
      throw new ApiError(
        "invalid_token",
        `the token has no "${this.env.TURNPIKE_JWT_TENANT_CLAIM}" claim`,
        CHALLENGE,
      );
    }
    return tenant;
  }
}

/** The credential of a request: the bearer value, else X-API-Key. */
export function credentialOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const authorization = single(headers.authorization);
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const key = single(headers["x-api-key"])?.trim();
  return key || undefined;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The config of `tenant`; a tenant the runtime config does not list may call nothing. */
export function tenantConfig(config: RuntimeConfig, tenant: string): TenantConfig {
  const found = config.tenants.find((t) => t.name === tenant);
  if (!found)
    throw new ApiError("tenant_unknown", `tenant ${tenant} has no TenantQuota in this installation`);
  return found;
}

/**
 * Throws 403 unless `tenant` may call model or pipeline `target`: not suspended (TenantQuota
 * spec.suspend), and the target on its allow-list (an empty allow-list allows all).
 */
export function checkAllowed(config: RuntimeConfig, tenant: string, target: string): void {
  const t = tenantConfig(config, tenant);
  if (t.suspended) throw new ApiError("tenant_suspended", `tenant ${tenant} is suspended by its TenantQuota`);
  if (t.models.length > 0 && !t.models.includes(target)) {
    throw new ApiError("model_not_allowed", `tenant ${tenant} may not call ${target}`);
  }
}
