/**
 * patches/kubernetes-fluent-client+*.patch: the client reuses one keep-alive connection per TLS
 * identity, and its parsed kubeconfig for a few seconds (per KUBECONFIG value). Unpatched, it builds a new undici Agent for every call, so every GET and PATCH pays a
 * TCP and TLS handshake and leaves a socket open for 600 s (bench/README.md, section 4: ~9,000
 * sockets and 3 GB for 1,000 models). Counted from this process's own sockets in /proc.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { kind, K8s } from "kubernetes-fluent-client";
import { describe, expect, it } from "vitest";

/** The apiserver's port, from the kubeconfig the harness wrote. */
function apiserverPort(): number {
  const server = /server:\s*(\S+)/.exec(readFileSync(process.env.KUBECONFIG!, "utf8"))?.[1];
  return Number(new URL(server!).port);
}

/** Established TCP connections of this process to `port`: its socket inodes joined with /proc/net/tcp{,6}. */
function connectionsTo(port: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync("/proc/self/fd")) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return ""; // closed meanwhile
      }
    })();
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      // cols: sl local remote state ... inode (10th)
      if (cols.length < 10 || cols[3] !== "01") continue;
      if (cols[2]!.split(":")[1] === portHex && inodes.has(cols[9]!)) count++;
    }
  }
  return count;
}

describe("kubernetes-fluent-client connections", () => {
  it("30 sequential API calls reuse one connection instead of opening 30", async () => {
    const port = apiserverPort();
    const before = connectionsTo(port);
    for (let i = 0; i < 30; i++) {
      const ns = await K8s(kind.Namespace).Get("default");
      expect(ns.metadata?.name).toBe("default");
    }
    const opened = connectionsTo(port) - before;
    expect(opened).toBeGreaterThanOrEqual(0);
    expect(opened).toBeLessThanOrEqual(2);
  });

  it("reads the kubeconfig again when KUBECONFIG names another file", async () => {
    const kubeconfig = process.env.KUBECONFIG!;
    await K8s(kind.Namespace).Get("default");
    process.env.KUBECONFIG = "/nonexistent/kubeconfig";
    try {
      await expect(K8s(kind.Namespace).Get("default")).rejects.toThrow();
    } finally {
      process.env.KUBECONFIG = kubeconfig;
    }
    expect((await K8s(kind.Namespace).Get("default")).metadata?.name).toBe("default");
  });
});
