/**
 * One socket write per turn of amqplib's frame multiplexer instead of one per frame. amqplib
 * queues every frame (a publish, an ack) on its channel's buffer and, on the next setImmediate,
 * its Mux writes them to the socket one `write` at a time; with Nagle off each is its own syscall
 * and, at the broker, its own TCP read. Corking the socket for that turn sends them in one writev:
 * a worker finishing a batch of 32 publishes 32 results and acks 32 tasks in one write. Flow
 * control is unchanged (a corked socket still answers `false` past its high-water mark and emits
 * `drain` after the flush).
 *
 * This reaches into amqplib internals (Connection.muxer, Mux._readIncoming, Mux.out; amqplib
 * 2.3); when they are not there it does nothing, so an upgrade can only lose the gain.
 */
import type { ChannelModel } from "amqplib";

interface MuxLike {
  _readIncoming?: () => void;
  out?: { cork?: () => void; uncork?: () => void };
}

/** Makes each multiplexer turn of `model`'s connection leave in one socket write. */
export function coalesceWrites(model: ChannelModel): boolean {
  const mux = (model as unknown as { connection?: { muxer?: MuxLike } }).connection?.muxer;
  const out = mux?.out;
  const readIncoming = mux?._readIncoming;
  if (!mux || !out || typeof readIncoming !== "function") return false;
  if (typeof out.cork !== "function" || typeof out.uncork !== "function") return false;
  mux._readIncoming = () => {
    out.cork!();
    try {
      readIncoming.call(mux);
    } finally {
      out.uncork!();
    }
  };
  return true;
}
