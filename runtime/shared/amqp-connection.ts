/**
 * One RabbitMQ connection lifecycle for every role and the operator: connect, open a confirm
 * channel, prepare it (declare, consume), notice its loss and reopen it, either on the next use or
 * at once in the background with the shared back-off (backoff.ts). Readiness is "a session is
 * open"; what a role does with the channel stays in the role.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { connectAmqp } from "./amqp.js";
import { retryUntilDone } from "./backoff.js";
import type { Logger } from "./logger.js";

/** An open connection and its confirm channel. */
export interface AmqpSession {
  connection: ChannelModel;
  channel: ConfirmChannel;
}

export interface AmqpConnectionOptions {
  url: string;
  /** Connection name shown in the management UI. */
  name: string;
  log: Logger;
  /**
   * After a loss: `on-demand` reopens at the next {@link AmqpConnection.session} call (publishers),
   * `background` reconnects at once and retries with back-off until it succeeds or is stopped
   * (consumers, which nobody else would wake up).
   */
  reconnect: "on-demand" | "background";
  /** Prepares each new session before it is handed out (declare queues, consume); a throw closes it. */
  setup?(session: AmqpSession): Promise<void>;
  /** An open session was lost (not closed by us); its unacked deliveries go back to their queues. */
  onLost?(session: AmqpSession, why: string): void;
  /** A background reconnect succeeded. */
  onReconnected?(): void;
}

/** See the file comment. */
export class AmqpConnection {
  #current: AmqpSession | undefined;
  /** The session whose setup is still running: its loss fails the opener, it does not reconnect. */
  #settingUp: AmqpSession | undefined;
  #opening: Promise<AmqpSession> | undefined;
  #reconnecting: Promise<void> | undefined;
  #closed = false;
  readonly #stopping = new AbortController();

  constructor(private readonly options: AmqpConnectionOptions) {}

  /** The open session, if any. */
  get current(): AmqpSession | undefined {
    return this.#current;
  }

  /** True while a session is open and prepared. */
  get ready(): boolean {
    return this.#current !== undefined && this.#settingUp === undefined;
  }

  /** The open session, or a new one (concurrent callers share one attempt). */
  session(): Promise<AmqpSession> {
    if (this.#current && !this.#settingUp) return Promise.resolve(this.#current);
    if (this.#closed)
      return Promise.reject(new Error(`the RabbitMQ connection ${this.options.name} is closed`));
    this.#opening ??= this.#open().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  /** Drops the open session on purpose, as a loss would (reconnecting as configured). */
  recycle(why: string): void {
    const current = this.#current;
    if (current) this.#lost(current.connection, why);
  }

  /** Ends background reconnecting (a back-off sleep ends at once); resolves when the loop is over. */
  async stopReconnecting(): Promise<void> {
    this.#closed = true;
    this.#stopping.abort(new Error(`closing the RabbitMQ connection ${this.options.name}`));
    await this.#reconnecting;
  }

  /**
   * Closes for good. `graceful` closes the channel first and waits for its close-ok: amqplib
   * multiplexes channels onto one socket, so a connection.close right after an ack can reach the
   * broker before the ack, and the acknowledged messages would be redelivered.
   */
  async close({ graceful = true }: { graceful?: boolean } = {}): Promise<void> {
    await this.stopReconnecting();
    await this.#opening?.catch(() => undefined);
    const current = this.#current;
    this.#current = undefined;
    if (graceful) await current?.channel.close().catch(() => undefined);
    await current?.connection.close().catch(() => undefined);
  }

  async #open(): Promise<AmqpSession> {
    const { url, name, log, setup } = this.options;
    const connection = await connectAmqp(url, name);
    connection.on("error", (err: Error) => log.warn({ err }, "RabbitMQ connection error"));
    connection.on("close", () => this.#lost(connection, "RabbitMQ connection closed"));
    try {
      const channel = await connection.createConfirmChannel();
      channel.on("error", (err: Error) => log.warn({ err }, "RabbitMQ channel error"));
      channel.on("close", () => this.#lost(connection, "RabbitMQ channel closed"));
      const session = { connection, channel };
      this.#current = this.#settingUp = session;
      await setup?.(session);
      if (this.#closed) throw new Error(`the RabbitMQ connection ${name} closed while connecting`);
      if (this.#current !== session)
        throw new Error(`the RabbitMQ connection ${name} was lost while connecting`);
      this.#settingUp = undefined;
      return session;
    } catch (error) {
      if (this.#settingUp?.connection === connection) this.#settingUp = undefined;
      if (this.#current?.connection === connection) this.#current = undefined;
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  #lost(connection: ChannelModel, why: string): void {
    const session = this.#current;
    if (this.#closed || !session || session.connection !== connection) return;
    this.#current = undefined;
    void connection.close().catch(() => undefined);
    if (this.#settingUp === session) return; // the opener fails and reports it
    this.options.onLost?.(session, why);
    if (this.options.reconnect !== "background") return;
    this.#reconnecting ??= this.#reconnect().finally(() => (this.#reconnecting = undefined));
  }

  /** Retries until a session is open; again if it is lost before the loop notices it succeeded. */
  async #reconnect(): Promise<void> {
    const { log } = this.options;
    try {
      while (!this.#closed && !this.ready) {
        await retryUntilDone("reconnecting to RabbitMQ", () => this.session(), log, this.#stopping.signal);
      }
    } catch {
      return; // stopped: close() ended the retries
    }
    if (this.#closed) return;
    log.info("reconnected to RabbitMQ");
    this.options.onReconnected?.();
  }
}
