/**
 * What one wake-up costs on this machine: two processes pass a one-byte message back and forth
 * over loopback TCP (as the roles, RabbitMQ and Redis talk), back to back or evenly paced at a
 * rate, and each side's CPU is divided by the round trips. Between paced messages both sides
 * sleep, so every message wakes a sleeping process, as an evenly paced request wakes each process
 * on its path; back to back, a side often finds the next message already there. The machine's
 * context switches per round trip are shown beside. Rounds alternate the order of the modes.
 *
 *   npx tsx bench/wake-cost.ts [--rates=0,3000,1500,500] [--seconds=4] [--rounds=2]   (0: back to back)
 *
 * Measurements only; nothing asserts.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createConnection, createServer, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { arg } from "./lib/compare-sides.js";
import { machineContextSwitches } from "./lib/processes.js";
import { round } from "./lib/stats.js";
import { renderTable } from "./lib/table.js";

const SERVER_FLAG = "--wake-cost-echo";
const START = 0x73; // "s": the measured part starts (after the warm-up); not echoed
const QUIT = 0x71; // "q": the echo side answers with its CPU time since "s" and exits
const WARM_UP = 2000;

/** The other side: echoes every byte; on "q" it writes its CPU microseconds since "s" and ends. */
function echoServer(): void {
  let from = process.cpuUsage();
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("data", (data) => {
      if (data.includes(QUIT)) {
        const cpu = process.cpuUsage(from);
        socket.end(String(cpu.user + cpu.system), () => process.exit(0));
        return;
      }
      if (data[0] === START) {
        from = process.cpuUsage();
        data = data.subarray(1);
      }
      if (data.length > 0) socket.write(data);
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);
  });
}

interface Run {
  roundTrips: number;
  clientUs: number;
  serverUs: number;
  switches: number;
}

/** Back-to-back round trips before measuring, so both sides' code is compiled. */
async function warmUp(socket: Socket): Promise<void> {
  let left = WARM_UP;
  await new Promise<void>((resolve) => {
    const onData = () => {
      if (--left > 0) socket.write("p");
      else {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.write("p");
  });
}

/** One run against a fresh echo process: back to back when rate is 0, else evenly paced. */
async function run(rate: number, seconds: number): Promise<Run> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--import", "tsx", self, SERVER_FLAG], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [portLine] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
  const socket: Socket = createConnection(Number(portLine), "127.0.0.1");
  socket.setNoDelay(true);
  await once(socket, "connect");
  await warmUp(socket);
  socket.write(String.fromCharCode(START));

  let answered = 0;
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  const switchesBefore = machineContextSwitches();
  const cpuBefore = process.cpuUsage();
  await new Promise<void>((resolve) => {
    // Paced bytes that leave together come back together: count bytes, not reads.
    socket.on("data", (data) => {
      answered += data.length;
      if (rate === 0 && performance.now() < end) {
        sent++;
        socket.write("p");
      } else if (answered === sent && performance.now() >= end) resolve();
    });
    if (rate === 0) {
      sent++;
      socket.write("p");
      return;
    }
    const start = performance.now();
    const tick = () => {
      const now = performance.now();
      while (start + (sent * 1000) / rate <= now && now < end) {
        sent++;
        socket.write("p");
      }
      if (now < end) setTimeout(tick, Math.max(0, start + (sent * 1000) / rate - performance.now()));
      else if (answered === sent) resolve();
    };
    tick();
  });
  const cpu = process.cpuUsage(cpuBefore);
  const switches = machineContextSwitches() - switchesBefore;
  socket.removeAllListeners("data");
  let serverUs = "";
  socket.on("data", (data) => (serverUs += data.toString()));
  socket.write(String.fromCharCode(QUIT));
  await once(socket, "end");
  socket.destroy();
  return { roundTrips: answered, clientUs: cpu.user + cpu.system, serverUs: Number(serverUs), switches };
}

async function main(): Promise<void> {
  const rates = arg("rates", "0,3000,1500,500").split(",").map(Number);
  const seconds = Number(arg("seconds", "4"));
  const rounds = Number(arg("rounds", "2"));
  const rows: (string | number)[][] = [];
  for (let r = 0; r < rounds; r++) {
    for (const rate of r % 2 ? [...rates].reverse() : rates) {
      const result = await run(rate, seconds);
      const per = (n: number) => round(n / Math.max(1, result.roundTrips), 1);
      rows.push([
        rate === 0 ? "back to back" : `${rate}/s evenly paced`,
        r + 1,
        result.roundTrips,
        per(result.clientUs),
        per(result.serverUs),
        per(result.switches),
      ]);
    }
  }
  console.log(
    renderTable(
      [
        "mode",
        "round",
        "round trips",
        "sender CPU µs each",
        "echo CPU µs each",
        "context switches each (machine)",
      ],
      rows,
      1,
    ),
  );
}

if (process.argv[2] === SERVER_FLAG) echoServer();
else await main();
