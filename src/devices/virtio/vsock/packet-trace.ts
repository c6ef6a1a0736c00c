// A vsock packet as `--trace vsock` shows it: one line with every header
// field a reader needs to follow a connection (docs/vsock.md walks through
// such a trace). `tx` is the guest's transmit queue (guest -> host), `rx` the
// receive queue (host -> guest).
import { Op, SHUTDOWN_RCV, SHUTDOWN_SEND, opName, type PacketHeader } from './packet.js';

/** Which queue a traced packet travelled on. */
export type PacketDirection = 'tx' | 'rx';

/** `tx REQUEST 3:49152 -> 2:1234 len=0 buf_alloc=262144 fwd_cnt=0`, plus flags where the op has them. */
export function describePacket(direction: PacketDirection, header: PacketHeader): string {
  const flags = header.op === Op.Shutdown ? ` flags=${shutdownFlags(header.flags)}` : header.flags !== 0 ? ` flags=${header.flags}` : '';
  return `${direction} ${opName(header.op)} ${header.srcCid}:${header.srcPort} -> ${header.dstCid}:${header.dstPort} ` +
    `len=${header.len} buf_alloc=${header.bufAlloc} fwd_cnt=${header.fwdCnt}${flags}`;
}

/** SHUTDOWN's flags by name: RCV, SEND or RCV|SEND. */
function shutdownFlags(flags: number): string {
  const names = [[SHUTDOWN_RCV, 'RCV'], [SHUTDOWN_SEND, 'SEND']] as const;
  const named = names.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name);
  return named.length > 0 ? named.join('|') : String(flags);
}
